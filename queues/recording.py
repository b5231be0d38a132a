"""Recording from Celery's signals, in the process that ran the task.

- task_failure: one `TaskFailure` row per failed run (tasks that keep no result included),
  arguments scrubbed with the errors app's rules and capped; the arguments as sent are kept
  apart (`raw_arguments`) only so that the console can retry the task.
- task_prerun / task_postrun: each run's runtime (time.monotonic) and outcome are added to a
  per-process buffer keyed by (minute, task name); a daemon thread writes each finished minute
  once, one row per (minute, task name) merged into `TaskMinute` (see `flush`). What is left is
  written when the worker or its pool process stops.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from datetime import UTC, datetime
from typing import Any

from celery.signals import (
    task_failure,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_shutdown,
    worker_shutdown,
)
from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from errors.scrubbing import Scrubber, truncate
from metrics.histogram import SLOTS, bucket_index
from queues.models import TaskFailure, TaskHour, TaskMinute

logger = logging.getLogger("opsconsole.queues")

# Characters of the scrubbed arguments shown (as JSON); longer ones are cut and marked.
MAX_SHOWN_ARGUMENTS = 8_192
# Characters of the arguments kept for a retry (as JSON); larger ones make a task unretriable.
MAX_RAW_ARGUMENTS = 65_536
MAX_MESSAGE = 2_000
MAX_TRACEBACK = 16_000  # the end is kept: the frame that raised and the exception
# (minute, task name) entries one process buffers at most while the database is unreachable.
MAX_BUFFERED = 5_000

Key = tuple[int, str]


def _jsonable(value: Any) -> Any:
    """`value` as JSON would carry it (objects that JSON cannot hold become their repr)."""
    return json.loads(json.dumps(value, default=repr))


def capture_arguments(args: Any, kwargs: Any) -> dict[str, Any]:
    """The fields of a TaskFailure that hold the arguments: scrubbed and capped for display,
    and the raw JSON for a retry ("" when it could not be kept whole)."""
    args = list(args or ())
    kwargs = dict(kwargs or {})
    try:
        raw = json.dumps({"args": args, "kwargs": kwargs})
    except (TypeError, ValueError):
        raw = ""  # not JSON: a retry could not send the same arguments
    if len(raw) > MAX_RAW_ARGUMENTS:
        raw = ""
    plain = _jsonable({"args": args, "kwargs": {str(k): v for k, v in kwargs.items()}})
    scrubbed = Scrubber(settings.OPS_ERRORS_SCRUB_FIELDS).scrub(plain)
    changed = scrubbed != plain
    shown_args: Any = scrubbed["args"]
    shown_kwargs: Any = scrubbed["kwargs"]
    if len(json.dumps(scrubbed)) > MAX_SHOWN_ARGUMENTS:
        changed = True
        shown_args = truncate(json.dumps(shown_args), MAX_SHOWN_ARGUMENTS // 2)
        shown_kwargs = {"[Truncated]": truncate(json.dumps(shown_kwargs), MAX_SHOWN_ARGUMENTS // 2)}
    return {
        "args": shown_args,
        "kwargs": shown_kwargs,
        "arguments_changed": changed,
        "raw_arguments": raw,
    }


def _tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def record_failure(
    task: Any, task_id: str, exception: BaseException | None, args: Any, kwargs: Any, tb: str
) -> TaskFailure:
    scrubber = Scrubber(settings.OPS_ERRORS_SCRUB_FIELDS)
    request = getattr(task, "request", None)
    delivery = getattr(request, "delivery_info", None) or {}
    message = "" if exception is None else str(exception)
    return TaskFailure.objects.create(
        task_id=str(task_id)[:255],
        task_name=str(getattr(task, "name", "") or "unknown")[:255],
        queue=str(delivery.get("routing_key") or "")[:255],
        exception_type=type(exception).__name__[:255] if exception is not None else "",
        exception_message=scrubber.scrub_string(truncate(message, MAX_MESSAGE)),
        traceback=scrubber.scrub_string(_tail(tb or "", MAX_TRACEBACK)),
        hostname=str(getattr(request, "hostname", "") or "")[:255],
        failed_at=timezone.now(),
        retries=int(getattr(request, "retries", 0) or 0),
        **capture_arguments(args, kwargs),
    )


@task_failure.connect(dispatch_uid="queues-record-failure")
def on_task_failure(
    sender: Any = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    args: Any = None,
    kwargs: Any = None,
    einfo: Any = None,
    **extra: Any,
) -> None:
    try:
        tb = str(getattr(einfo, "traceback", "") or "")
        record_failure(sender, task_id or "", exception, args, kwargs, tb)
    except Exception:  # recording must never change what happens to the task
        logger.exception("could not record the failure of task %s", task_id)


# --- runtime per minute -----------------------------------------------------------------------
class MinuteBuffer:
    """Runs added up per (minute, task name) in this process; `take` hands them over."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[Key, list[Any]] = {}
        self._pid = 0
        self._stop = threading.Event()
        # Set in Celery workers (worker_init): only they start the flush thread. Elsewhere
        # (tasks run eagerly) the buffer is flushed by whoever calls `flush_buffer`.
        self.flush_in_thread = False

    def add(self, name: str, runtime: float, failed: bool, now: float | None = None) -> None:
        minute = int((time.time() if now is None else now) // 60) * 60
        with self._lock:
            entry = self._data.get((minute, name))
            if entry is None:
                if len(self._data) >= MAX_BUFFERED:
                    return  # bounded while nothing can be written
                entry = self._data[(minute, name)] = [0, 0, 0.0, [0] * SLOTS]
            entry[0] += 1
            entry[1] += int(failed)
            entry[2] += runtime
            entry[3][bucket_index(runtime)] += 1
        self._ensure_thread()

    def take(self, before: int | None = None) -> dict[Key, list[Any]]:
        """Remove and return the entries of minutes before `before` (epoch s), or all."""
        with self._lock:
            keys = [k for k in self._data if before is None or k[0] < before]
            return {k: self._data.pop(k) for k in keys}

    def give_back(self, entries: dict[Key, list[Any]]) -> None:
        with self._lock:
            for key, entry in entries.items():
                mine = self._data.get(key)
                if mine is None:
                    if len(self._data) < MAX_BUFFERED:
                        self._data[key] = entry
                    continue
                mine[0] += entry[0]
                mine[1] += entry[1]
                mine[2] += entry[2]
                mine[3] = [a + b for a, b in zip(mine[3], entry[3], strict=True)]

    def _ensure_thread(self) -> None:
        if not self.flush_in_thread or self._pid == os.getpid():
            return
        self._pid = os.getpid()  # a forked pool process starts its own thread
        thread = threading.Thread(target=self._loop, name="queues-minute-flush", daemon=True)
        thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(61 - time.time() % 60):  # a second past each minute
            flush_buffer(self, before=int(time.time() // 60) * 60)
            connections.close_all()  # this thread's own connections

    def stop(self) -> None:
        self._stop.set()


def _merge_into(model: Any, field: str, entries: dict[Key, list[Any]]) -> None:
    """Add `entries` ({(epoch start, task name): [count, failures, seconds, histogram]}) to
    `model`'s rows keyed by (`field`, task_name): a missing row is created, then every row is
    locked and added to, so processes flushing the same period at once lose nothing."""
    when = {k[0]: datetime.fromtimestamp(k[0], tz=UTC) for k in entries}
    model.objects.bulk_create(
        [model(**{field: when[start]}, task_name=name, histogram=[]) for start, name in entries],
        ignore_conflicts=True,
    )
    rows = model.objects.select_for_update().filter(
        **{f"{field}__in": list(when.values())}, task_name__in={k[1] for k in entries}
    )
    changed = []
    for row in rows:
        entry = entries.get((int(getattr(row, field).timestamp()), row.task_name))
        if entry is None:
            continue
        row.count += entry[0]
        row.failures += entry[1]
        row.runtime_sum += entry[2]
        old = list(row.histogram or []) + [0] * (SLOTS - len(row.histogram or []))
        row.histogram = [a + b for a, b in zip(old, entry[3], strict=True)]
        changed.append(row)
    model.objects.bulk_update(
        changed, ["count", "failures", "runtime_sum", "histogram"], batch_size=200
    )


def by_hour(entries: dict[Key, list[Any]]) -> dict[Key, list[Any]]:
    hours: dict[Key, list[Any]] = {}
    for (minute, name), entry in entries.items():
        total = hours.setdefault((minute // 3600 * 3600, name), [0, 0, 0.0, [0] * SLOTS])
        total[0] += entry[0]
        total[1] += entry[1]
        total[2] += entry[2]
        total[3] = [a + b for a, b in zip(total[3], entry[3], strict=True)]
    return hours


def write_minutes(entries: dict[Key, list[Any]]) -> None:
    """Merge buffered minutes into TaskMinute (one row per minute and task name) and TaskHour
    (one per hour and task name), in one transaction."""
    if not entries:
        return
    with transaction.atomic():
        _merge_into(TaskMinute, "minute", entries)
        _merge_into(TaskHour, "hour", by_hour(entries))


def flush_buffer(buffer: MinuteBuffer, before: int | None = None) -> None:
    entries = buffer.take(before)
    try:
        write_minutes(entries)
    except Exception:
        logger.exception("could not write task runtimes; kept for the next minute")
        buffer.give_back(entries)


minutes = MinuteBuffer()
_started: dict[str, float] = {}


@task_prerun.connect(dispatch_uid="queues-task-prerun")
def on_task_prerun(task_id: str | None = None, **kwargs: Any) -> None:
    if task_id is not None and len(_started) < MAX_BUFFERED:
        _started[task_id] = time.monotonic()


@task_postrun.connect(dispatch_uid="queues-task-postrun")
def on_task_postrun(
    task_id: str | None = None, task: Any = None, state: str | None = None, **kwargs: Any
) -> None:
    started = _started.pop(task_id, None) if task_id else None
    if started is None or task is None:
        return
    name = str(getattr(task, "name", "") or "unknown")[:255]
    minutes.add(name, time.monotonic() - started, failed=state == "FAILURE")


@worker_init.connect(dispatch_uid="queues-flush-in-workers")
def on_worker_init(**kwargs: Any) -> None:
    minutes.flush_in_thread = True


@worker_process_shutdown.connect(dispatch_uid="queues-flush-pool-process")
@worker_shutdown.connect(dispatch_uid="queues-flush-worker")
def on_shutdown(**kwargs: Any) -> None:
    minutes.stop()
    flush_buffer(minutes)
