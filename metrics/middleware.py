"""Per-route request metrics: duration, status class, database query count and time.

The route is the resolver's pattern (`admin/auth/user/<path:object_id>/change/`), never the
raw path, so label cardinality stays bounded. Requests that resolve to nothing are counted
under "<unmatched>". Recording never breaks a request: a failure here is logged and ignored.
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


class _QueryTimer:
    """Times every query run while it is the current request's timer."""

    __slots__ = ("count", "durations", "slow", "slow_seconds", "total")

    def __init__(self, slow_seconds: float) -> None:
        self.count = 0
        self.total = 0.0
        self.durations: list[float] = []
        self.slow: list[tuple[str, float]] = []
        self.slow_seconds = slow_seconds


_current: ContextVar[_QueryTimer | None] = ContextVar("ops_metrics_query_timer", default=None)


def _timed_execute(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
) -> Any:
    """Installed once on every connection (see install_query_timer); outside a request it
    only costs one ContextVar read. Cheaper than entering `execute_wrapper` per request."""
    timer = _current.get()
    if timer is None:
        return execute(sql, params, many, context)
    start = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        elapsed = time.perf_counter() - start
        timer.count += 1
        timer.total += elapsed
        timer.durations.append(elapsed)
        if elapsed >= timer.slow_seconds:
            timer.slow.append((sql, elapsed))


def install_query_timer(sender: Any = None, connection: Any = None, **kwargs: Any) -> None:
    if connection is not None and _timed_execute not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, _timed_execute)


def _user_id(request: HttpRequest, cookie: str) -> int | None:
    """The signed-in user's id, if the request already loaded its user. Never loads it:
    counting active users must not add queries to a view that did not need the user."""
    if cookie not in request.COOKIES:
        return None
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
        self.slow_query = float(settings.OPS_METRICS_SLOW_QUERY_MS) / 1000.0
        self.session_cookie = settings.SESSION_COOKIE_NAME

    def __call__(self, request: HttpRequest) -> HttpResponse:
        timer = _QueryTimer(self.slow_query)
        token = _current.set(timer)
        start = time.perf_counter()
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
        finally:
            duration = time.perf_counter() - start
            _current.reset(token)
            try:
                self._record(request, status, duration, timer)
            except Exception:
                logger.warning("could not record request metrics", exc_info=True)
        return response

    def _record(
        self, request: HttpRequest, status: int, duration: float, timer: _QueryTimer
    ) -> None:
        # The hot path of every request: kept to attribute reads and one recorder call.
        match = request.resolver_match
        route = (match.route or match.view_name or UNMATCHED) if match is not None else UNMATCHED
        method = request.method or "GET"
        recorder.record_request(
            route,
            method,
            status,
            duration,
            timer.count,
            timer.total,
            timer.durations,
            _user_id(request, self.session_cookie),
        )
        if timer.slow or duration >= self.slow_request:
            self._record_slow(request, route, method, status, duration, timer)

    def _record_slow(
        self,
        request: HttpRequest,
        route: str,
        method: str,
        status: int,
        duration: float,
        timer: _QueryTimer,
    ) -> None:
        now = time.time()
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
                    "query_count": timer.count,
                    "query_ms": timer.total * 1000,
                    "request_id": request_id,
                    "host": HOSTNAME,
                }
            )
        for sql, elapsed in timer.slow[:20]:
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
