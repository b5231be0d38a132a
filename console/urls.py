from django.urls import URLPattern, path

from console import views
from opsconsole.admintools import guarded_page

urlpatterns: list[URLPattern] = [
    path(
        "console/dashboard/live/",
        guarded_page(views.dashboard_live, views.LIVE_PERMISSIONS, forbid_non_staff=True),
        name="console-dashboard-live",
    ),
]
