"""Per-route request metrics: duration, status class, database query count and time.

The route is the resolver's pattern (`admin/auth/user/<path:object_id>/change/`), never the
raw path, so label cardinality stays bounded. Requests that resolve to nothing are counted
under "<unmatched>"; a method outside HTTP's standard ones (a client may send any token) under
"other". Recording never breaks a request: a failure here is logged and ignored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.functional import empty

from metrics.recorder import HOSTNAME, recorder

logger = logging.getLogger("opsconsole.metrics")

UNMATCHED = "<unmatched>"
# The methods a label may name (RFC 9110 and PATCH); any other becomes OTHER_METHOD, so a
# scanner sending FOOBAR or ten thousand made-up methods adds no series.
METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")
)
OTHER_METHOD = "other"


def method_label(method: str | None) -> str:
    return method if method in METHODS else OTHER_METHOD


# The current request's query timings: a list the execute wrapper appends to. Each query adds
# its duration (a float); a slow one also adds (sql, seconds). A plain list keeps the cost of
# a request that runs no query to one allocation.
_current: ContextVar[list[Any] | None] = ContextVar("ops_metrics_query_timer", default=None)
# Set from settings when the middleware is built (one value per process).
_slow_query_seconds = [0.1]


def _timed_execute(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
) -> Any:
    """Installed once on every connection (see install_query_timer); outside a request it
    only costs one ContextVar read. Cheaper than entering `execute_wrapper` per request."""
    timings = _current.get()
    if timings is None:
        return execute(sql, params, many, context)
    start = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        elapsed = time.perf_counter() - start
        timings.append(elapsed)
        if elapsed >= _slow_query_seconds[0]:
            timings.append((sql, elapsed))


def install_query_timer(sender: Any = None, connection: Any = None, **kwargs: Any) -> None:
    if connection is not None and _timed_execute not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, _timed_execute)


def _user_id(request: HttpRequest) -> int | None:
    """The signed-in user's id, if the request already loaded its user. Never loads it:
    counting active users must not add queries to a view that did not need the user.
    (Only asked when the request carries a session cookie.)"""
    user = request.__dict__.get("user")
    wrapped = getattr(user, "_wrapped", None)
    if wrapped is None or wrapped is empty:
        return None
    if not wrapped.is_authenticated:
        return None
    return int(wrapped.pk)


class RequestMetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        from django.db import connections
        from django.db.backends.signals import connection_created

        self.get_response = get_response
        connection_created.connect(install_query_timer, dispatch_uid="metrics-query-timer")
        # Connections already open in this thread (the signal only sees new ones).
        for conn in connections.all(initialized_only=True):
            install_query_timer(connection=conn)
        self.slow_request = float(settings.OPS_METRICS_SLOW_REQUEST_MS) / 1000.0
        _slow_query_seconds[0] = float(settings.OPS_METRICS_SLOW_QUERY_MS) / 1000.0
        self.session_cookie = settings.SESSION_COOKIE_NAME
        self.record = recorder.record_request

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # The hot path of every request: measured with callgrind in bench/bench_metrics.py,
        # so it is kept to one list, two clock reads and one recorder call.
        timings: list[Any] = []
        token = _current.set(timings)
        start = time.perf_counter()
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
        finally:
            duration = time.perf_counter() - start
            _current.reset(token)
            try:
                match = request.resolver_match
                route = (match and (match.route or match.view_name)) or UNMATCHED
                if timings:
                    durations = [t for t in timings if t.__class__ is float]
                    slow = [t for t in timings if t.__class__ is tuple]
                else:
                    durations = slow = timings
                method = request.method
                self.record(
                    route,
                    method if method in METHODS else OTHER_METHOD,
                    status,
                    duration,
                    len(durations),
                    sum(durations) if durations else 0.0,
                    durations,
                    _user_id(request) if self.session_cookie in request.COOKIES else None,
                )
                if slow or duration >= self.slow_request:
                    self._record_slow(request, route, status, duration, durations, slow)
            except Exception:
                logger.warning("could not record request metrics", exc_info=True)
        return response

    def _record_slow(
        self,
        request: HttpRequest,
        route: str,
        status: int,
        duration: float,
        durations: list[float],
        slow: list[tuple[str, float]],
    ) -> None:
        now = time.time()
        method = method_label(request.method)
        request_id = str(getattr(request, "request_id", ""))[:128]
        if duration >= self.slow_request:
            recorder.record_slow(
                {
                    "kind": "request",
                    "at": now,
                    "route": route[:255],
                    "method": method[:10],
                    "status": status,
                    "duration_ms": duration * 1000,
                    "query_count": len(durations),
                    "query_ms": sum(durations) * 1000,
                    "request_id": request_id,
                    "host": HOSTNAME,
                }
            )
        for sql, elapsed in slow[:20]:
            recorder.record_slow(
                {
                    "kind": "query",
                    "at": now,
                    "route": route[:255],
                    "sql": sql[:4000],
                    "duration_ms": elapsed * 1000,
                    "request_id": request_id,
                    "host": HOSTNAME,
                }
            )
