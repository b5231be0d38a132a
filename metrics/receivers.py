"""Celery task runtime and wait time per task name, from Celery's own signals.

The publisher stamps `ops_enqueued_at` (epoch seconds) into the message headers; the worker
measures wait = start - max(enqueued, eta) and runtime = postrun - prerun in the process that
ran the task, and the recorder flushes both with the request figures.
"""

from __future__ import annotations

import time
from typing import Any

from celery.signals import before_task_publish, task_postrun, task_prerun, worker_process_shutdown
from celery.worker.control import control_command

from metrics.recorder import recorder

HEADER = "ops_enqueued_at"
_started: dict[str, tuple[float, float | None]] = {}


@before_task_publish.connect(dispatch_uid="metrics-stamp-enqueue-time")
def stamp_enqueue_time(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    if headers is not None:
        headers.setdefault(HEADER, time.time())


def _wait_seconds(task: Any, now: float) -> float | None:
    request = getattr(task, "request", None)
    enqueued = getattr(request, HEADER, None)
    if enqueued is None:
        headers = getattr(request, "headers", None) or {}
        enqueued = headers.get(HEADER)
    if enqueued is None:
        return None
    try:
        ready_at = float(enqueued)
    except (TypeError, ValueError):
        return None
    eta = getattr(request, "eta", None)
    if eta:
        from datetime import datetime

        try:
            eta_ts = (datetime.fromisoformat(eta) if isinstance(eta, str) else eta).timestamp()
            ready_at = max(ready_at, eta_ts)
        except (TypeError, ValueError):
            pass
    return max(0.0, now - ready_at)


@task_prerun.connect(dispatch_uid="metrics-task-prerun")
def task_started(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    if task_id is None:
        return
    now = time.time()
    _started[task_id] = (time.perf_counter(), _wait_seconds(task, now))


@task_postrun.connect(dispatch_uid="metrics-task-postrun")
def task_finished(
    task_id: str | None = None, task: Any = None, state: str | None = None, **kwargs: Any
) -> None:
    started = _started.pop(task_id, None) if task_id else None
    if started is None or task is None:
        return
    runtime = time.perf_counter() - started[0]
    recorder.record_task(
        name=str(getattr(task, "name", "unknown"))[:200],
        state=state or "UNKNOWN",
        runtime=runtime,
        wait=started[1],
    )


@worker_process_shutdown.connect(dispatch_uid="metrics-flush-on-worker-exit")
def flush_on_exit(**kwargs: Any) -> None:
    recorder.shutdown()


@control_command(name="ops_collect_resource_usage")
def collect_resource_usage_here(state: Any, **kwargs: Any) -> dict[str, Any]:
    """Broadcast by the resource beat job, so every worker's host reports itself (several
    servers appear, each under its own hostname). Runs in the worker's main process."""
    from django.db import close_old_connections

    from metrics.collectors import collect_resource_usage

    close_old_connections()
    try:
        result = collect_resource_usage(skip_if_sampled=True)
    finally:
        close_old_connections()
    return {"ok": result}
