from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False), name="home"),
    path("admin/", admin.site.urls),
    path("health/", include("health.urls")),
    path("", include("console.urls")),
    path("", include("metrics.urls")),
    path("", include("errors.urls")),
    path("", include("backups.urls")),
    path("", include("maintenance.urls")),
    path("", include("alerts.urls")),
]
