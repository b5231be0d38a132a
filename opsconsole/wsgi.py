"""The WSGI application: Django's handler, with a short path for error ingest.

An SDK's POST to /api/<id>/envelope/ or /store/ is machine-to-machine: no session, CSRF,
login, messages or static files apply to it, and sentry-sdk's per-request WSGI scope is a
measurable share of the web CPU per ingested event (docs/PERFORMANCE.md, Error ingest).
What still applies, applies here too: host validation (ALLOWED_HOSTS), the request id,
request metrics, Django's request signals (database connection hygiene) and its exception
handling (a bug is logged, captured as our own error, and answered 500). A deployment that
takes /api/ out of OPS_MAINTENANCE_EXEMPT_PATHS gets the full stack.

A post this process already knows to refuse (a key that cannot be ours or that the key cache
knows is unknown, a project whose quota refusal is in force) is answered from the raw environ,
before a Django request is built: a client that ignores 403s and Retry-After is the one that
sends most, and each of its requests should cost as little as possible (docs/PERFORMANCE.md,
Hostile ingest). Such an answer carries the request id and is counted in the request metrics
like any other; nothing in it needs the database, so no request signal is sent.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import django
import sentry_sdk
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler, get_script_name
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port, validate_host
from django.urls import resolve, set_script_prefix

import opsconsole.celery  # noqa: F401  (the standalone project's Celery app)
from opsconsole.middleware import SAFE_REQUEST_ID
from opsconsole.startup import refuse_unsafe_start

INGEST_PATH = re.compile(r"/api/([0-9]{1,19})/(envelope|store)/\Z")
logger = logging.getLogger("opsconsole.metrics")


class OpsWSGIHandler(WSGIHandler):
    def __init__(self) -> None:
        super().__init__()
        from django.conf import settings

        from errors.views import refuse_early
        from metrics.middleware import RequestMetricsMiddleware
        from metrics.recorder import recorder
        from opsconsole.middleware import RequestContextMiddleware

        self.ingest_fast_path = any(
            # As the maintenance middleware reads the list: empty entries exempt nothing.
            prefix and "/api/".startswith(prefix)
            for prefix in settings.OPS_MAINTENANCE_EXEMPT_PATHS
        )
        chain: Any = convert_exception_to_response(_dispatch)
        self.record_request: Callable[..., None] | None = None
        if "metrics.middleware.RequestMetricsMiddleware" in settings.MIDDLEWARE:
            chain = convert_exception_to_response(RequestMetricsMiddleware(chain))
            self.record_request = recorder.record_request
        self.ingest_chain = convert_exception_to_response(RequestContextMiddleware(chain))
        self.refuse_early = refuse_early
        # Early refusals validate Host as HttpRequest.get_host does in the plain case; when a
        # setting makes that more than a header lookup, every post takes the Django path.
        self.early_hosts: list[str] | None = (
            None if settings.USE_X_FORWARDED_HOST or settings.DEBUG else settings.ALLOWED_HOSTS
        )
        # The metrics route of each endpoint, as the resolver names it for the middleware.
        self.routes = {e: str(resolve(f"/api/1/{e}/").route) for e in ("envelope", "store")}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        # Our own error capture (errors/capture.py) puts each request's data on its event
        # itself. Whatever a request leaves on this thread's sentry scope (breadcrumbs, tags,
        # user) is cleared before the next one starts, so it never reaches another request's
        # event: 1 us, where forking a scope per request costs 7-10 us.
        sentry_sdk.get_isolation_scope().clear()
        if self.ingest_fast_path and (ingest := INGEST_PATH.match(environ.get("PATH_INFO", ""))):
            started = time.perf_counter()
            refused = (
                self.refuse_early(environ, int(ingest[1])) if self._plain_host(environ) else None
            )
            if refused is not None:
                return self._refused(environ, start_response, refused, ingest[2], started)
            return self._ingest(environ, start_response)
        return super().__call__(environ, start_response)

    def _plain_host(self, environ: dict[str, Any]) -> bool:
        """Whether the request's Host is one ALLOWED_HOSTS allows (else the Django path
        answers it, 400)."""
        if self.early_hosts is None:
            return False
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
        domain, _ = split_domain_port(host)
        return bool(domain) and validate_host(domain, self.early_hosts)

    def _refused(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        response: HttpResponse,
        endpoint: str,
        started: float,
    ) -> Any:
        """Answer a refusal decided from the environ alone (errors.views.refuse_early): no
        Django request, middleware or signal, but the request id and the metrics every request
        gets."""
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        response["X-Request-ID"] = incoming if SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        start_response(f"{response.status_code} {response.reason_phrase}", list(response.items()))
        # The body, not the response: closing a Django response sends request_finished, and
        # this request never started one.
        content = [response.content]
        if self.record_request is not None:
            try:
                duration = time.perf_counter() - started
                status = response.status_code
                self.record_request(self.routes[endpoint], "POST", status, duration, 0, 0.0, [])
            except Exception:
                logger.warning("could not record request metrics", exc_info=True)
        return content

    def _ingest(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        # WSGIHandler.__call__, minus the middleware stack.
        from django.core import signals

        set_script_prefix(get_script_name(environ))
        signals.request_started.send(sender=self.__class__, environ=environ)
        request = self.request_class(environ)
        response: Any = self.ingest_chain(request)
        response._handler_class = self.__class__
        headers: Iterable[tuple[str, str]] = [
            *response.items(),
            *(("Set-Cookie", c.OutputString()) for c in response.cookies.values()),
        ]
        start_response(f"{response.status_code} {response.reason_phrase}", list(headers))
        return response


def _dispatch(request: HttpRequest) -> HttpResponse:
    request.get_host()  # ALLOWED_HOSTS, as CommonMiddleware enforces it (DisallowedHost -> 400)
    match = resolve(request.path_info)
    request.resolver_match = match
    response: HttpResponse = match.func(request, *match.args, **match.kwargs)
    return response


def build_application() -> OpsWSGIHandler:
    django.setup(set_prefix=False)  # as django.core.wsgi.get_wsgi_application does
    refuse_unsafe_start("web server")
    return OpsWSGIHandler()


os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconsole.settings")
application = build_application()
