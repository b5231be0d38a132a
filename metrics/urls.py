from django.urls import URLPattern, URLResolver, path

from metrics import console, views
from opsconsole.admintools import guarded_page

urlpatterns: list[URLPattern | URLResolver] = [
    path("metrics", views.metrics_view, name="metrics"),
    path(
        "console/metrics/",
        guarded_page(
            console.metrics_console, "metrics.view_performancemetric", forbid_non_staff=True
        ),
        name="metrics-console",
    ),
]
