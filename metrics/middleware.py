"""Per-route request metrics: duration, status class, database query count and time.

The route is the resolver's pattern (`admin/auth/user/<path:object_id>/change/`), never the
raw path, so label cardinality stays bounded. Requests that resolve to nothing are counted
under "<unmatched>". Recording never breaks a request: a failure here is logged and ignored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from metrics.recorder import HOSTNAME, recorder

logger = logging.getLogger("opsconsole.metrics")

UNMATCHED = "<unmatched>"


class _QueryTimer:
    """A `connection.execute_wrapper` that times every query of one request."""

    __slots__ = ("count", "durations", "slow", "slow_seconds", "total")

    def __init__(self, slow_seconds: float) -> None:
        self.count = 0
        self.total = 0.0
        self.durations: list[float] = []
        self.slow: list[tuple[str, float]] = []
        self.slow_seconds = slow_seconds

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = time.perf_counter() - start
            self.count += 1
            self.total += elapsed
            self.durations.append(elapsed)
            if elapsed >= self.slow_seconds:
                self.slow.append((sql, elapsed))


def route_of(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return UNMATCHED
    return match.route or match.view_name or UNMATCHED


def _user_id(request: HttpRequest) -> int | None:
    # Only requests that carry a session can be authenticated; others cost nothing here.
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return None
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return int(user.pk)


class RequestMetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.slow_request = float(settings.OPS_METRICS_SLOW_REQUEST_MS) / 1000.0
        self.slow_query = float(settings.OPS_METRICS_SLOW_QUERY_MS) / 1000.0

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from django.db import connections

        timer = _QueryTimer(self.slow_query)
        wrappers = [c.execute_wrapper(timer) for c in connections.all()]
        start = time.perf_counter()
        for w in wrappers:
            w.__enter__()
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
        finally:
            for w in reversed(wrappers):
                w.__exit__(None, None, None)
            duration = time.perf_counter() - start
            try:
                self._record(request, status, duration, timer)
            except Exception:
                logger.warning("could not record request metrics", exc_info=True)
        return response

    def _record(
        self, request: HttpRequest, status: int, duration: float, timer: _QueryTimer
    ) -> None:
        route = route_of(request)
        method = request.method or "GET"
        recorder.record_request(
            route=route,
            method=method,
            status=status,
            duration=duration,
            query_count=timer.count,
            query_time=timer.total,
            query_durations=timer.durations,
            user_id=_user_id(request),
        )
        if duration >= self.slow_request or timer.slow:
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
