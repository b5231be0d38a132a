"""Running health components concurrently, each against its own deadline.

A process-wide thread pool runs the checks; the caller waits at most until each component's
deadline and never joins a hung thread (under gunicorn sync workers too, unlike
`asyncio`-based runners whose per-request loop waits for its executor). A component whose
previous run is still in flight within its deadline is joined rather than started again; one
still in flight past its deadline is reported as hung without starting another, so a dead
dependency costs at most one stuck thread per component.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connections
from django.utils import timezone
from health_check.base import HealthCheck
from health_check.exceptions import HealthCheckException, ServiceWarning

from health import registry

logger = logging.getLogger("opsconsole.health")

PASS, WARN, FAIL = "pass", "warn", "fail"
_RANK = {PASS: 0, WARN: 1, FAIL: 2}
# A check's own client timeout gets this long to report before the runner gives up on it.
GRACE_SECONDS = 0.1
_LOG_EVERY = 300.0


@dataclass
class Outcome:
    component: str
    status: str
    output: str
    duration_ms: float
    time: datetime
    component_type: str = "component"
    observations: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Report:
    status: str
    outcomes: list[Outcome]
    time: datetime
    duration_ms: float
    maintenance: dict[str, Any] | None = None

    def outcome(self, component: str) -> Outcome | None:
        return next((o for o in self.outcomes if o.component == component), None)


def worst(statuses: list[str]) -> str:
    return max(statuses, key=_RANK.__getitem__, default=PASS)


_pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="health")
_inflight: dict[str, tuple[Future[Outcome], float, float]] = {}
_inflight_lock = threading.Lock()
_last_logged: dict[str, tuple[str, float]] = {}


def _log_failure_once(component: str, message: str) -> None:
    """A failing probe polled every second logs once when it starts failing, then at most
    every five minutes while it keeps failing."""
    now = time.monotonic()
    last = _last_logged.get(component)
    if last is None or now - last[1] > _LOG_EVERY:
        _last_logged[component] = (message, now)
        logger.warning("health component %s: %s", component, message)


def _run_one(check: HealthCheck) -> tuple[str, str]:
    try:
        check.run()
    except ServiceWarning as exc:
        return WARN, str(exc.message if hasattr(exc, "message") else exc)
    except HealthCheckException as exc:
        return FAIL, str(exc.message if hasattr(exc, "message") else exc)
    except Exception as exc:
        logger.debug("health check %r raised", check, exc_info=True)
        from health.checks import reason

        return FAIL, f"unexpected error: {reason(exc)}"
    return PASS, ""


def _run_component(name: str, checks: list[HealthCheck]) -> Outcome:
    started = time.perf_counter()
    stamp = timezone.now()
    statuses: list[str] = []
    outputs: list[str] = []
    observations: list[dict[str, Any]] = []
    try:
        for check in checks:
            status, output = _run_one(check)
            statuses.append(status)
            if output:
                outputs.append(output)
            observations.extend(getattr(check, "observations", []))
    finally:
        # Pool threads live long: never leave a database connection open in one.
        connections.close_all()
    component_type = getattr(checks[0], "component_type", "component") if checks else "component"
    return Outcome(
        component=name,
        status=worst(statuses),
        output="; ".join(outputs),
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
        time=stamp,
        component_type=component_type,
        observations=observations,
    )


def _budget(checks: list[HealthCheck]) -> float:
    return sum(check.timeout.total_seconds() for check in checks) or 1.0


def _submit(name: str) -> tuple[Future[Outcome] | None, float, str]:
    """Start (or join) a run of one component. Returns (future, deadline, hung_message)."""
    component = registry.get(name)
    if component is None:
        raise KeyError(name)
    checks = component.factory()
    budget = _budget(checks)
    now = time.monotonic()
    with _inflight_lock:
        running = _inflight.get(name)
        if running is not None and not running[0].done():
            future, started, previous_budget = running
            if now - started < previous_budget + GRACE_SECONDS:
                return future, started + previous_budget + GRACE_SECONDS, ""
            return (
                None,
                now,
                (f"timed out: the previous check has not returned after {now - started:.0f} s"),
            )
        future = _pool.submit(_run_component, name, checks)
        _inflight[name] = (future, now, budget)
    return future, now + budget + GRACE_SECONDS, ""


def _maintenance_snapshot() -> dict[str, Any] | None:
    try:
        from maintenance import state

        snapshot = state.current()
    except Exception:
        return None
    finally:
        connections.close_all()
    if not snapshot.is_down:
        return {"active": False}
    return {"active": True, "message": snapshot.message, "since": snapshot.since}


def run_components(names: list[str]) -> Report:
    """Run the named components concurrently; answer by the largest deadline at the latest."""
    started = time.perf_counter()
    stamp = timezone.now()
    jobs: list[tuple[str, Future[Outcome] | None, float, str]] = []
    for name in names:
        future, deadline, hung = _submit(name)
        jobs.append((name, future, deadline, hung))
    maintenance_job = _pool.submit(_maintenance_snapshot)
    outcomes: list[Outcome] = []
    for name, future, deadline, hung in jobs:
        if future is None:
            outcome = Outcome(name, FAIL, hung, 0.0, stamp)
        else:
            try:
                outcome = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                waited = time.perf_counter() - started
                outcome = Outcome(
                    name, FAIL, f"timed out after {waited:.1f} s", round(waited * 1000, 2), stamp
                )
        if outcome.status == FAIL:
            _log_failure_once(name, outcome.output)
        else:
            _last_logged.pop(name, None)
        outcomes.append(outcome)
    try:
        maintenance = maintenance_job.result(timeout=0.3)
    except FutureTimeout:
        maintenance = None
    return Report(
        status=worst([o.status for o in outcomes]),
        outcomes=outcomes,
        time=stamp,
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
        maintenance=maintenance,
    )


class ReportCache:
    """Per-process results for a short TTL, computed once however many probes arrive."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, ...], tuple[float, Report]] = {}
        self._key_locks: dict[tuple[str, ...], threading.Lock] = {}

    def get(self, names: list[str], ttl: float) -> Report:
        key = tuple(names)
        if ttl <= 0:
            return run_components(names)
        entry = self._entries.get(key)
        if entry is not None and time.monotonic() < entry[0]:
            return entry[1]
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # single flight: concurrent probes wait for the one run
            entry = self._entries.get(key)
            if entry is not None and time.monotonic() < entry[0]:
                return entry[1]
            report = run_components(names)
            self._entries[key] = (time.monotonic() + ttl, report)
            return report

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


report_cache = ReportCache()
