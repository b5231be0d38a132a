"""In-process aggregation of request, query and task figures, flushed to the store.

Each process adds observations to plain dicts under a lock (a few microseconds per request)
and a daemon thread hands the deltas to the store every OPS_METRICS_FLUSH_INTERVAL seconds,
so the request path never waits on Redis or the database. The thread is started lazily per
process id, so gunicorn's and Celery's forked children each get their own; atexit (and Celery's
worker_process_shutdown) flush what is left. An interval of 0 disables the thread: callers
(tests) flush explicitly.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from bisect import bisect_left as _bisect_left
from collections import defaultdict
from typing import Any

from django.conf import settings

from metrics.histogram import DURATION_BUCKETS, SLOTS, bucket_index
from metrics.store import current_minute, get_store

logger = logging.getLogger("opsconsole.metrics")

SEP = "\t"
# Keep at most this many minutes buffered while the store is unreachable.
MAX_BUFFERED_MINUTES = 15
HOSTNAME = settings.OPS_HOST_NAME
# This process's id, kept current by a fork hook rather than asked for on every request.
_PID = [os.getpid()]


def _forked() -> None:
    _PID[0] = os.getpid()


os.register_at_fork(after_in_child=_forked)


def request_field(route: str, method: str, status: str, suffix: str) -> str:
    return SEP.join(("req", route, method, status, suffix))


def task_field(name: str, suffix: str) -> str:
    return SEP.join(("task", name, suffix))


class Recorder:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._minutes: dict[int, defaultdict[str, float]] = {}
        self._users: dict[int, float] = {}
        self._slow: list[dict[str, Any]] = []
        self._pid = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._last_error_log = 0.0
        # The current minute's dict, so most records skip the minute arithmetic.
        self._current: defaultdict[str, float] = defaultdict(float)
        self._minute_end = 0.0
        # Field names per (route, method, status), built once: no string building per request.
        self._names: dict[tuple[str, str, int], tuple[str, str, str, str, list[str]]] = {}

    def _request_names(
        self, route: str, method: str, status: int
    ) -> tuple[str, str, str, str, list[str]]:
        base = SEP.join(("req", route, method, f"{status // 100}xx", ""))
        names = (
            base + "n",
            base + "s",
            base + "qn",
            base + "qs",
            [f"{base}b{i}" for i in range(SLOTS)],
        )
        if len(self._names) < 10_000:  # bounded even if routes were unbounded
            self._names[(route, method, status)] = names
        return names

    # --- recording (hot path) ----------------------------------------------------------------
    def _fields(self, now: float) -> defaultdict[str, float]:
        if self._pid != _PID[0]:
            self._after_fork()
        if now < self._minute_end and now >= self._minute_end - 60:
            return self._current
        minute = int(now // 60) * 60
        fields = self._minutes.get(minute)
        if fields is None:
            fields = self._minutes[minute] = defaultdict(float)
        self._current, self._minute_end = fields, minute + 60
        return fields

    def record_request(
        self,
        route: str,
        method: str,
        status: int,
        duration: float,
        query_count: int,
        query_time: float,
        query_durations: list[float],
        user_id: int | None = None,
        now: float | None = None,
    ) -> None:
        if now is None:
            now = time.time()
        names = self._names.get((route, method, status))
        if names is None:
            names = self._request_names(route, method, status)
        with self._lock:
            end = self._minute_end
            if end - 60 <= now < end and self._pid == _PID[0]:
                fields = self._current  # the same minute as the last record: most requests
            else:
                fields = self._fields(now)
            fields[names[0]] += 1
            fields[names[1]] += duration
            # histogram.bucket_index, inlined: this line runs on every request.
            fields[names[4][_bisect_left(DURATION_BUCKETS, duration)]] += 1
            if query_count:
                fields[names[2]] += query_count
                fields[names[3]] += query_time
                for q in query_durations:
                    fields[f"db{SEP}b{bucket_index(q)}"] += 1
                fields[f"db{SEP}n"] += query_count
                fields[f"db{SEP}s"] += query_time
            if user_id is not None:
                self._users[user_id] = now

    def record_task(
        self,
        *,
        name: str,
        state: str,
        runtime: float | None,
        wait: float | None,
        now: float | None = None,
    ) -> None:
        now = time.time() if now is None else now
        with self._lock:
            fields = self._fields(now)
            fields[task_field(name, f"n{SEP}{state}")] += 1
            if runtime is not None:
                fields[task_field(name, "rn")] += 1
                fields[task_field(name, "rs")] += runtime
                fields[task_field(name, f"rb{bucket_index(runtime)}")] += 1
            if wait is not None:
                fields[task_field(name, "wn")] += 1
                fields[task_field(name, "ws")] += wait
                fields[task_field(name, f"wb{bucket_index(wait)}")] += 1

    def record_slow(self, item: dict[str, Any]) -> None:
        with self._lock:
            if self._pid != _PID[0]:
                self._after_fork()
            if len(self._slow) < 1000:
                self._slow.append(item)

    # --- flushing ----------------------------------------------------------------------------
    def _after_fork(self) -> None:
        # Inherited buffers belong to the parent, which flushes them itself.
        self._minutes = {}
        self._minute_end = 0.0
        self._users = {}
        self._slow = []
        self._pid = _PID[0]
        self._thread = None
        self._stop = threading.Event()
        interval = float(settings.OPS_METRICS_FLUSH_INTERVAL)
        if interval > 0:
            self._thread = threading.Thread(
                target=self._run, args=(interval,), name="metrics-flush", daemon=True
            )
            self._thread.start()

    def _run(self, interval: float) -> None:
        from django.db import close_old_connections

        while not self._stop.wait(interval):
            # This thread's own database connection (the no-Redis store) honours
            # CONN_MAX_AGE like a request's would.
            close_old_connections()
            self.flush()

    def flush(self) -> bool:
        """Hand buffered deltas to the store. Returns False (and keeps them) on failure."""
        with self._lock:
            minutes, self._minutes = self._minutes, {}
            self._minute_end = 0.0
            users, self._users = self._users, {}
            slow, self._slow = self._slow, []
        if not (minutes or users or slow):
            return True
        try:
            store = get_store()
            if minutes:
                store.add({m: dict(f) for m, f in minutes.items()})
            if users:
                store.seen_users(users)
            if slow:
                store.push_slow(slow)
        except Exception:
            self._restore(minutes, users, slow)
            now = time.monotonic()
            if now - self._last_error_log > 60:
                self._last_error_log = now
                logger.warning("metrics flush failed; keeping the figures", exc_info=True)
            return False
        return True

    def _restore(
        self,
        minutes: dict[int, defaultdict[str, float]],
        users: dict[int, float],
        slow: list[dict[str, Any]],
    ) -> None:
        with self._lock:
            for minute, fields in minutes.items():
                target = self._minutes.setdefault(minute, defaultdict(float))
                for name, value in fields.items():
                    target[name] += value
            for old in sorted(self._minutes)[:-MAX_BUFFERED_MINUTES]:
                del self._minutes[old]
            for uid, seen in users.items():
                self._users[uid] = max(seen, self._users.get(uid, 0.0))
            self._slow = (slow + self._slow)[:1000]

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Stop this process's flush thread, wait for it, then flush what is left.

        The thread must be joined before the interpreter finalizes: a daemon thread frozen
        mid-flush can die holding the Redis pool's lock, and the pool's own clean-up at exit
        then waits on that lock for ever (a gunicorn or Celery worker that never exits)."""
        if self._pid != os.getpid():
            return True  # a forked child that never recorded: the parent flushes its own
        thread = self._thread
        if thread is not None:
            self._stop.set()
            if thread is not threading.current_thread():
                thread.join(timeout)
            self._thread = None
        return self.flush()

    def discard(self) -> None:
        """Drop everything buffered (tests: figures of earlier tests are not theirs)."""
        with self._lock:
            self._minutes = {}
            self._minute_end = 0.0
            self._users = {}
            self._slow = []

    def pending(self) -> dict[int, dict[str, float]]:
        with self._lock:
            return {m: dict(f) for m, f in self._minutes.items()}


recorder = Recorder()


def flush() -> bool:
    return recorder.flush()


@atexit.register
def _flush_at_exit() -> None:
    # With no flush thread (interval 0) the owner flushes explicitly; at exit its database
    # may already be gone.
    if recorder._pid == os.getpid() and recorder._thread is not None:
        try:
            recorder.shutdown()
        except Exception:  # interpreter shutting down; nothing sensible left to do
            logger.debug("metrics flush at exit failed", exc_info=True)


__all__ = ["HOSTNAME", "Recorder", "current_minute", "flush", "recorder", "request_field"]
