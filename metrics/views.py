"""GET /metrics: Prometheus text format, optionally behind a bearer token."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from metrics.exposition import render


def _authorized(request: HttpRequest) -> bool:
    token = settings.OPS_METRICS_TOKEN
    if not token and settings.OPS_METRICS_PUBLIC:
        return True
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, supplied = header.partition(" ")
    if (
        token
        and scheme.lower() == "bearer"
        and hmac.compare_digest(supplied.strip().encode(), token.encode())
    ):
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_staff)


@csrf_exempt
def metrics_view(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        response = HttpResponse(
            "method not allowed: use GET\n", status=405, content_type="text/plain"
        )
        response["Allow"] = "GET, HEAD"
        return response
    if not _authorized(request):
        hint = (
            "send 'Authorization: Bearer <OPS_METRICS_TOKEN>'"
            if settings.OPS_METRICS_TOKEN
            else "set OPS_METRICS_TOKEN on the server and send it as a bearer token"
        )
        response = HttpResponse(
            f"unauthorized: {hint}\n",
            status=401,
            content_type="text/plain",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body = render()
    response = HttpResponse(
        b"" if request.method == "HEAD" else body, content_type=CONTENT_TYPE_PLAIN_0_0_4
    )
    response["Cache-Control"] = "no-store"
    return response
