"""Answer load-balancer probes before anything that needs the database, sessions or ALLOWED_HOSTS.

`/health/live` is answered here with no I/O at all. The other `/health/...` endpoints are
dispatched from here too, so a probe that sends its IP as `Host` is answered rather than
refused by host validation. Answering early skips the security middleware further down, so
its response headers (nosniff, Referrer-Policy, COOP, HSTS on HTTPS, X-Frame-Options) are
added here the same way.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware

LIVE_PATHS = frozenset({"/health/live", "/health/live/"})
_LIVE_BODY = b'{"status":"pass"}'


class HealthProbeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        # Used for their response half only: neither reads the Host header there, and the
        # request half (the HTTPS redirect) must not apply to a load balancer's plain-HTTP probe.
        self.security = SecurityMiddleware(get_response)
        self.frame_options = XFrameOptionsMiddleware(get_response)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if path in LIVE_PATHS:
            return self.secured(request, live_response(request))
        if path == "/health" or path.startswith("/health/"):
            from health.views import dispatch_probe

            return self.secured(request, dispatch_probe(request))
        return self.get_response(request)

    def secured(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response = self.security.process_response(request, response)
        return self.frame_options.process_response(request, response)


def live_response(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        response = HttpResponse(
            b'{"status":"fail","output":"method not allowed: use GET or HEAD"}',
            status=405,
            content_type="application/json",
        )
        response["Allow"] = "GET, HEAD"
        return response
    response = HttpResponse(
        b"" if request.method == "HEAD" else _LIVE_BODY,
        content_type="application/health+json",
    )
    response["Cache-Control"] = "no-store"
    response["Content-Length"] = str(len(_LIVE_BODY))
    return response
