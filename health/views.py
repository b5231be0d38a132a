"""The /health endpoints, dispatched by HealthProbeMiddleware before host validation.

`/health/` (all checks), `/health/ready` (database, cache/Redis, broker), `/health/<component>`.
Bodies are application/health+json (draft-inadarei-api-health-check), plain JSON for
`Accept: application/json`, or an HTML page for browsers. pass/warn -> 200, fail -> 503.
Details (observed values, outputs, versions, hostnames) only with the health token or a staff
session; a wrong token is treated exactly like none.
"""

from __future__ import annotations

import hmac
import json
import math
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from health import registry, services
from health.runner import FAIL, Report
from opsconsole import __version__

HEALTH_JSON = "application/health+json"


def _json(
    payload: dict[str, Any], status: int, content_type: str = "application/json"
) -> HttpResponse:
    return HttpResponse(json.dumps(payload, default=str), status=status, content_type=content_type)


def _token_ok(request: HttpRequest) -> bool:
    expected = settings.OPS_HEALTH_TOKEN
    if not expected:
        return False
    auth = request.headers.get("Authorization", "")
    candidates = [
        request.headers.get("X-Health-Token", ""),
        auth[7:] if auth.lower().startswith("bearer ") else "",
        request.GET.get("token", ""),
    ]
    # Compare every candidate, in constant time, so timing reveals nothing.
    ok = False
    for candidate in candidates:
        ok |= hmac.compare_digest(candidate.encode(), expected.encode())
    return ok


def _staff_session(request: HttpRequest) -> bool:
    """A staff user's session cookie, read without the session middleware (which has not run)."""
    key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if not key:
        return False
    try:
        from importlib import import_module

        from django.contrib.auth import get_user

        engine = import_module(settings.SESSION_ENGINE)
        request.session = engine.SessionStore(key)
        user = get_user(request)
        return bool(user.is_active and user.is_staff)
    except Exception:
        return False  # without a database, nobody is staff; the probe still answers


def show_details(request: HttpRequest) -> bool:
    return _token_ok(request) or _staff_session(request)


def _format(request: HttpRequest) -> str:
    explicit = request.GET.get("format", "")
    if explicit in {"json", "html", "health"}:
        return explicit
    accept = request.headers.get("Accept", "")
    if HEALTH_JSON in accept:
        return "health"
    if "text/html" in accept:
        return "html"
    if "application/json" in accept:
        return "json"
    return "health"


def render_report(report: Report, *, details: bool) -> dict[str, Any]:
    checks: dict[str, list[dict[str, Any]]] = {}
    for outcome in report.outcomes:
        base: dict[str, Any] = {"status": outcome.status, "time": outcome.time.isoformat()}
        if not details:
            checks[outcome.component] = [base]
            continue
        base["componentType"] = outcome.component_type
        if outcome.output:
            base["output"] = outcome.output
        if not outcome.observations:
            checks[outcome.component] = [base]
            continue
        for obs in outcome.observations:
            entry = dict(base)
            entry["observedValue"] = obs["observedValue"]
            if obs.get("observedUnit"):
                entry["observedUnit"] = obs["observedUnit"]
            checks.setdefault(f"{outcome.component}:{obs['measurement']}", []).append(entry)
    body: dict[str, Any] = {"status": report.status}
    notes: list[str] = []
    maintenance = report.maintenance or {}
    if maintenance.get("active"):
        notes.append("maintenance mode is on")
        body["maintenance"] = True
    if details:
        body.update(
            version=__version__.split(".")[0],
            releaseId=__version__,
            serviceId=settings.OPS_HOST_NAME,
            description=f"Ops Console ({settings.OPS_ENVIRONMENT})",
        )
        if maintenance.get("active") and maintenance.get("message"):
            notes.append(f"maintenance: {maintenance['message']}")
        failing = [o for o in report.outcomes if o.status != "pass"]
        if failing:
            body["output"] = "; ".join(f"{o.component}: {o.output}" for o in failing if o.output)
    if notes:
        body["notes"] = notes
    body["checks"] = checks
    return body


def _cache_headers(response: HttpResponse, details: bool) -> None:
    ttl = settings.OPS_HEALTH_CACHE_TTL
    scope = "private" if details else "public"
    response["Cache-Control"] = f"{scope}, max-age={math.ceil(ttl)}" if ttl > 0 else "no-store"
    response["Vary"] = "Accept, Cookie, Authorization, X-Health-Token"


def _not_found(scope: str) -> HttpResponse:
    known = ", ".join(["ready", *registry.all_names()])
    return _json(
        {"status": "fail", "output": f"unknown health component {scope!r}; known: {known}"},
        404,
    )


def dispatch_probe(request: HttpRequest) -> HttpResponse:
    path = request.path_info.rstrip("/")
    parts = path.split("/")[2:]  # "", "health", ...
    if len(parts) > 1:
        return _not_found("/".join(parts))
    scope = parts[0] if parts and parts[0] else "full"
    if request.method not in ("GET", "HEAD"):
        response = _json({"status": "fail", "output": "method not allowed: use GET or HEAD"}, 405)
        response["Allow"] = "GET, HEAD"
        return response
    try:
        report = services.get_report(scope)
    except services.UnknownComponent:
        return _not_found(scope)
    details = show_details(request)
    status = 503 if report.status == FAIL else 200
    body = render_report(report, details=details)
    fmt = _format(request)
    if fmt == "html":
        html = render_to_string(
            "health/report.html",
            {
                "body": body,
                "report": report,
                "details": details,
                "scope": scope,
                "version": __version__ if details else "",
            },
        )
        response = HttpResponse(html, status=status, content_type="text/html; charset=utf-8")
    else:
        response = _json(body, status, HEALTH_JSON if fmt == "health" else "application/json")
    _cache_headers(response, details)
    # A failing probe polled every second must not log an ERROR per poll (django.request);
    # transitions are logged once by the health service instead.
    response._has_been_logged = True  # type: ignore[attr-defined]
    if request.method == "HEAD":
        response.content = b""
    return response
