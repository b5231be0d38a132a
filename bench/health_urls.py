"""Our URLs plus the peers we compare with: a bare "ok" view and django-health-check's stock
HealthCheckView running the same readiness checks (database, cache, Redis)."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path
from health_check.views import HealthCheckView
from redis.asyncio import Redis

from opsconsole.urls import urlpatterns as ops_urlpatterns


def ok(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def redis_client() -> Redis:
    return Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)


STOCK_READY = [
    "health_check.Database",
    "health_check.Cache",
    ("health_check.contrib.redis.Redis", {"client_factory": redis_client}),
]

urlpatterns = [
    path("bench/ok", ok),
    path("bench/dhc-ready", HealthCheckView.as_view(checks=STOCK_READY)),
    *ops_urlpatterns,
]
