"""Answer 503 while maintenance mode is on, except for the admin, exempt paths, allowed IPs and
holders of the bypass cookie. /health/* never gets here: health.middleware answers it first."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse

from maintenance import bypass, state
from opsconsole.context import current_client_ip


def _exempt_prefixes() -> tuple[str, ...]:
    prefixes = list(getattr(settings, "OPS_MAINTENANCE_EXEMPT_PATHS", []))
    # The admin stays reachable: it asks for a staff login itself.
    with contextlib.suppress(NoReverseMatch):
        prefixes.append(reverse("admin:index"))
    static_url = getattr(settings, "STATIC_URL", "") or ""
    if static_url:
        prefixes.append("/" + static_url.lstrip("/"))
    return tuple(p for p in prefixes if p)


class MaintenanceModeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        # Exempt paths first: they never cost a state lookup (scrapes, ingest, the admin).
        if path.startswith(_exempt_prefixes()):
            return self.get_response(request)
        snapshot = state.current()
        if not snapshot.is_down:
            return self.get_response(request)
        if bypass.is_secret_path(path, snapshot):
            return _set_bypass_cookie(request, snapshot)
        if bypass.ip_allowed(current_client_ip(), snapshot.allowed_ips) or bypass.cookie_is_valid(
            request.COOKIES.get(bypass.COOKIE_NAME), snapshot
        ):
            return self.get_response(request)
        return maintenance_response(request, snapshot)


def _set_bypass_cookie(request: HttpRequest, snapshot: state.Snapshot) -> HttpResponse:
    response = HttpResponseRedirect("/")
    response.set_cookie(
        bypass.COOKIE_NAME,
        bypass.make_cookie_value(snapshot),
        max_age=int(bypass.COOKIE_MAX_AGE.total_seconds()),
        httponly=True,
        samesite="Lax",
        secure=bool(getattr(settings, "SESSION_COOKIE_SECURE", False)),
    )
    response["Cache-Control"] = "no-store"
    return response


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept or "+json" in accept


def maintenance_response(request: HttpRequest, snapshot: state.Snapshot) -> HttpResponse:
    message = snapshot.message or "We are doing some maintenance and will be back shortly."
    if _wants_json(request):
        body = json.dumps(
            {"status": "maintenance", "message": message, "retry_after": snapshot.retry_after}
        )
        response = HttpResponse(body, status=503, content_type="application/json")
    else:
        html = render_to_string(
            "maintenance/503.html",
            {
                "message": message,
                "retry_after": snapshot.retry_after,
                "site_name": getattr(settings, "OPS_SITE_NAME", "Ops Console"),
            },
        )
        response = HttpResponse(html, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(snapshot.retry_after)
    # A cached maintenance page would outlive the maintenance.
    response["Cache-Control"] = "no-store"
    return response
