"""The WSGI application: Django's handler, with a short path for error ingest.

An SDK's POST to /api/<id>/envelope/ or /store/ is machine-to-machine: no session, CSRF,
login, messages or static files apply to it, and sentry-sdk's per-request WSGI scope (which
our own error capture installed then) cost 0.35 ms of the ~2.2 ms of web CPU per ingested
event (measured with capture off and on, same run). Together with the other ingest changes of
27 Nov 2026, web CPU per accepted event fell from 2.26 to 1.48 ms (docs/PERFORMANCE.md).
What still applies, applies here too: host validation (ALLOWED_HOSTS), the request id,
request metrics, Django's request signals (database connection hygiene) and its exception
handling (a bug is logged, captured as our own error, and answered 500). A deployment that
takes /api/ out of OPS_MAINTENANCE_EXEMPT_PATHS gets the full stack.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from typing import Any

import django
import sentry_sdk
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler, get_script_name
from django.http import HttpRequest, HttpResponse
from django.urls import resolve, set_script_prefix

import opsconsole.celery  # noqa: F401  (the standalone project's Celery app)
from opsconsole.startup import refuse_unsafe_start

INGEST_PATH = re.compile(r"/api/[0-9]{1,19}/(?:envelope|store)/\Z")


class OpsWSGIHandler(WSGIHandler):
    def __init__(self) -> None:
        super().__init__()
        from django.conf import settings

        from metrics.middleware import RequestMetricsMiddleware
        from opsconsole.middleware import RequestContextMiddleware

        self.ingest_fast_path = any(
            # As the maintenance middleware reads the list: empty entries exempt nothing.
            prefix and "/api/".startswith(prefix)
            for prefix in settings.OPS_MAINTENANCE_EXEMPT_PATHS
        )
        chain: Any = convert_exception_to_response(_dispatch)
        if "metrics.middleware.RequestMetricsMiddleware" in settings.MIDDLEWARE:
            chain = convert_exception_to_response(RequestMetricsMiddleware(chain))
        self.ingest_chain = convert_exception_to_response(RequestContextMiddleware(chain))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        # Our own error capture (errors/capture.py) puts each request's data on its event
        # itself. Whatever a request leaves on this thread's sentry scope (breadcrumbs, tags,
        # user) is cleared before the next one starts, so it never reaches another request's
        # event: 1 us, where forking a scope per request costs 7-10 us.
        sentry_sdk.get_isolation_scope().clear()
        if self.ingest_fast_path and INGEST_PATH.match(environ.get("PATH_INFO", "")):
            return self._ingest(environ, start_response)
        return super().__call__(environ, start_response)

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
