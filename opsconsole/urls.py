"""The standalone console's URLconf: the admin at /admin/ and the routes a host includes too."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False), name="home"),
    path("admin/", admin.site.urls),
    path("", include("opsconsole.urls_host")),
]
