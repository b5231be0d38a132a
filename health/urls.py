"""The /health endpoints are answered by health.middleware.HealthProbeMiddleware, before host
validation and sessions; these routes only give them names for reverse()."""

from django.http import HttpRequest, HttpResponse
from django.urls import path, re_path

from health.views import dispatch_probe


def _probe(request: HttpRequest, **kwargs: str) -> HttpResponse:
    return dispatch_probe(request)


app_name = "health"
urlpatterns = [
    path("", _probe, name="full"),
    path("ready", _probe, name="ready"),
    re_path(r"^(?P<component>[A-Za-z0-9_-]+)/?$", _probe, name="component"),
]
