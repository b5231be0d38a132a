"""The console's own routes for a host project: `path("", include("opsconsole.urls_host"))`.

/health/... (answered by health.middleware before the host's URLconf is even read; these routes
name them), /metrics, the error ingest API (/api/<project>/envelope/ and /store/) and the
console pages outside the admin. The admin pages come with the host's admin site.
"""

from django.urls import URLPattern, URLResolver, include, path

urlpatterns: list[URLPattern | URLResolver] = [
    path("health/", include("health.urls")),
    path("", include("console.urls")),
    path("", include("metrics.urls")),
    path("", include("errors.urls")),
    path("", include("backups.urls")),
    path("", include("maintenance.urls")),
    path("", include("alerts.urls")),
]
