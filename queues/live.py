"""What the workers and the broker say now: workers by heartbeat and by Celery's inspect,
queue depth and oldest waiting message. Both are cached for a few seconds, so a page refreshed
every 5 s by several people asks the broker once per interval."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache

from health.checks import measure_queues, reason
from health.models import WorkerHeartbeat

logger = logging.getLogger("opsconsole.queues")

# Seconds one broadcast waits for replies (two are sent: stats and active), and how long the
# answers are reused.
INSPECT_TIMEOUT = 0.45
CACHE_SECONDS = 4
CACHE_KEY = "queues:live:v1"


@dataclass
class Worker:
    hostname: str
    heartbeat_age: float | None = None  # seconds since the worker's last heartbeat
    replied: bool = False  # answered Celery's inspect just now
    concurrency: int | None = None
    active: int | None = None
    processed: int | None = None  # tasks run since the worker started


@dataclass
class QueueState:
    name: str
    depth: int
    oldest_wait: float | None


@dataclass
class LiveState:
    workers: list[Worker] = field(default_factory=list)
    queues: list[QueueState] = field(default_factory=list)
    broker_error: str = ""
    inspect_error: str = ""
    measured_at: float = 0.0


def _inspect(expected: int) -> tuple[dict[str, dict[str, Any]], str]:
    """{hostname: {"concurrency", "active", "processed"}} from the workers that answered."""
    from opsconsole.celery import app

    found: dict[str, dict[str, Any]] = {}
    try:
        inspect = app.control.inspect(timeout=INSPECT_TIMEOUT, limit=expected or None)
        stats = inspect.stats() or {}
        active = inspect.active() or {}
    except Exception as exc:  # a broker without broadcast (filesystem) or unreachable
        return found, f"workers could not be asked: {reason(exc)}"
    for host, data in stats.items():
        pool = data.get("pool") or {}
        concurrency = pool.get("max-concurrency")
        found[host] = {
            "concurrency": concurrency if isinstance(concurrency, int) else None,
            "processed": sum(v for v in (data.get("total") or {}).values() if isinstance(v, int)),
        }
    for host, tasks in active.items():
        found.setdefault(host, {})["active"] = len(tasks or [])
    return found, ""


def _workers(now: datetime) -> tuple[list[Worker], str]:
    beats = {b.hostname: (now - b.last_seen).total_seconds() for b in WorkerHeartbeat.objects.all()}
    max_age = settings.OPS_HEALTH_WORKER_MAX_AGE
    live = sum(1 for age in beats.values() if age <= max_age)
    replies, error = _inspect(live)
    workers = []
    for host in sorted(set(beats) | set(replies)):
        reply = replies.get(host)
        workers.append(
            Worker(
                hostname=host,
                heartbeat_age=beats.get(host),
                replied=reply is not None,
                concurrency=(reply or {}).get("concurrency"),
                active=(reply or {}).get("active"),
                processed=(reply or {}).get("processed"),
            )
        )
    return workers, error


def _queues() -> tuple[list[QueueState], str]:
    from opsconsole.celery import app

    try:
        measured = measure_queues(app, 1.0)
    except Exception as exc:
        return [], f"broker unreachable: {reason(exc)}"
    return [QueueState(q.name, q.depth, q.oldest_wait) for q in measured], ""


def current(now: datetime, *, fresh: bool = False) -> LiveState:
    """Workers and queues now (cached CACHE_SECONDS unless `fresh`)."""
    if not fresh:
        try:
            cached = cache.get(CACHE_KEY)
        except Exception:
            cached = None
        if isinstance(cached, LiveState):
            return cached
    workers, inspect_error = _workers(now)
    queues, broker_error = _queues()
    state = LiveState(workers, queues, broker_error, inspect_error, time.time())
    try:
        cache.set(CACHE_KEY, state, CACHE_SECONDS)
    except Exception:
        logger.warning("could not cache the queue page's live state", exc_info=True)
    return state
