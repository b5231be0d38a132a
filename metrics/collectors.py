"""The two minute collectors: app performance from the counters, host resources from psutil.

Both are idempotent: rows are keyed by (metric, key, host, minute) or (host, minute) and
written with upserts, so a retried job or two workers running it at once write the same rows.
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from django.conf import settings
from django.utils import timezone

from metrics.histogram import SLOTS, quantile
from metrics.hosts import mark_seen
from metrics.models import PerformanceMetric, ResourceUsage, SlowQuery, SlowRequest
from metrics.recorder import SEP
from metrics.sqlshape import fingerprint, normalize_sql
from metrics.store import current_minute, get_store, redis_client
from metrics.thresholds import APP_HOST, Observation, evaluate
from opsconsole.conf import celery_conf

logger = logging.getLogger("opsconsole.metrics")

# A minute is read once every process has had time to flush it.
SETTLE_SECONDS = 15
# Minutes re-read on each run, so a late flush or a missed run is caught up.
CATCH_UP_MINUTES = 5


def _minute_dt(minute: int) -> datetime:
    return datetime.fromtimestamp(minute, tz=UTC)


def _slots(fields: dict[str, float], prefix: str) -> list[float]:
    return [fields.get(f"{prefix}{i}", 0.0) for i in range(SLOTS)]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


Row = tuple[str, str, float, int]


@dataclass
class _Minute:
    """One minute's counters, grouped: the whole app, each route, each task."""

    app_slots: list[float] = field(default_factory=lambda: [0.0] * SLOTS)
    total: float = 0.0
    errors: float = 0.0
    duration_sum: float = 0.0
    routes: dict[str, dict[str, float]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(float))
    )
    route_slots: dict[str, list[float]] = field(
        default_factory=lambda: defaultdict(lambda: [0.0] * SLOTS)
    )
    tasks: dict[str, dict[str, float]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(float))
    )

    def add_request(self, route: str, status: str, suffix: str, value: float) -> None:
        if suffix == "n":
            self.total += value
            self.routes[route]["n"] += value
            if status == "5xx":
                self.errors += value
                self.routes[route]["e"] += value
        elif suffix == "s":
            self.duration_sum += value
            self.routes[route]["s"] += value
        elif suffix in ("qn", "qs"):
            self.routes[route][suffix] += value
        elif suffix.startswith("b"):
            i = int(suffix[1:])
            self.app_slots[i] += value
            self.route_slots[route][i] += value


def _group(fields: dict[str, float]) -> _Minute:
    minute = _Minute()
    for name, value in fields.items():
        parts = name.split(SEP)
        if parts[0] == "req" and len(parts) == 5:
            _, route, _method, status, suffix = parts
            minute.add_request(route, status, suffix, value)
        elif parts[0] == "task" and len(parts) >= 3:
            minute.tasks[parts[1]][SEP.join(parts[2:])] += value
    return minute


def _p95_row(metric: str, key: str, slots: list[float], n: int, q: float = 0.95) -> list[Row]:
    p95 = _ms(quantile(q, slots))
    return [] if p95 is None else [(metric, key, p95, n)]


def _app_rows(minute: _Minute) -> list[Row]:
    total = minute.total
    if not total:
        return []
    n = int(total)
    rows: list[Row] = [
        ("request_rate_per_s", "", total / 60.0, n),
        ("response_time_avg_ms", "", minute.duration_sum / total * 1000, n),
    ]
    for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        pct = _ms(quantile(q, minute.app_slots))
        if pct is not None:
            rows.append((f"response_time_{name}_ms", "", pct, n))
    rows.append(("error_rate_percent", "", minute.errors / total * 100.0, n))
    return rows


def _route_rows(minute: _Minute) -> list[Row]:
    rows: list[Row] = []
    for route, agg in minute.routes.items():
        n = int(agg["n"])
        if not n:
            continue
        rows.append(("route_requests", route, agg["n"], n))
        rows.append(("route_response_time_avg_ms", route, agg["s"] / agg["n"] * 1000, n))
        slots = minute.route_slots[route]
        for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
            rows += _p95_row(f"route_response_time_{name}_ms", route, slots, n, q)
        rows.append(("route_queries_per_request", route, agg["qn"] / agg["n"], n))
        rows.append(("route_query_time_avg_ms", route, agg["qs"] / agg["n"] * 1000, n))
        # Written even when 0, so a minute with no 5xx counts towards the error rate.
        rows.append(("route_errors", route, agg["e"], n))
    return rows


def _db_rows(fields: dict[str, float]) -> list[Row]:
    db_n = fields.get(f"db{SEP}n", 0.0)
    if not db_n:
        return []
    n = int(db_n)
    return [
        ("db_query_time_avg_ms", "", fields[f"db{SEP}s"] / db_n * 1000, n),
        *_p95_row("db_query_time_p95_ms", "", _slots(fields, f"db{SEP}b"), n),
    ]


def _task_timing_rows(task: str, agg: dict[str, float], prefix: str, name: str) -> list[Row]:
    """Average and p95 of one of a task's timings: run time ("r") or queue wait ("w")."""
    count = agg.get(f"{prefix}n")
    if not count:
        return []
    n = int(count)
    return [
        (f"task_{name}_avg_ms", task, agg[f"{prefix}s"] / count * 1000, n),
        *_p95_row(f"task_{name}_p95_ms", task, _slots(agg, f"{prefix}b"), n),
    ]


def _task_rows(minute: _Minute) -> list[Row]:
    rows: list[Row] = []
    for task, agg in minute.tasks.items():
        done = sum(v for k, v in agg.items() if k.startswith("n" + SEP))
        if done:
            rows.append(("task_count", task, done, int(done)))
            rows.append(("task_failures", task, agg.get(f"n{SEP}FAILURE", 0.0), int(done)))
        rows += _task_timing_rows(task, agg, "r", "runtime")
        rows += _task_timing_rows(task, agg, "w", "wait")
    return rows


def summarize_minute(fields: dict[str, float]) -> list[Row]:
    """(metric, key, value, samples) for one minute of merged counters. Only measured figures:
    a metric with no observations in the minute produces no row."""
    minute = _group(fields)
    return _app_rows(minute) + _route_rows(minute) + _db_rows(fields) + _task_rows(minute)


def _upsert(rows: list[PerformanceMetric]) -> None:
    if rows:
        PerformanceMetric.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["metric", "key", "host", "recorded_at"],
            update_fields=["value", "samples"],
        )


def collect_performance_metrics(now: datetime | None = None) -> dict[str, Any]:
    """Turn the settled minutes' counters and the live gauges into PerformanceMetric rows,
    then evaluate thresholds on the newest settled minute."""
    now = now or timezone.now()
    store = get_store()
    last = current_minute(now.timestamp() - SETTLE_SECONDS) - 60
    written = 0
    newest: list[tuple[str, str, float, int]] = []
    for minute in range(last - 60 * (CATCH_UP_MINUTES - 1), last + 60, 60):
        fields = store.minute(minute)
        rows = summarize_minute(fields)
        if minute == last:
            newest = rows
        at = _minute_dt(minute)
        _upsert(
            [
                PerformanceMetric(recorded_at=at, metric=m, key=k, value=v, samples=n)
                for m, k, v, n in rows
            ]
        )
        written += len(rows)
    gauges = _gauges(store, now)
    at = _minute_dt(current_minute(now.timestamp()))
    _upsert(
        [
            PerformanceMetric(recorded_at=at, metric=m, key=k, value=v, samples=n)
            for m, k, v, n in gauges
        ]
    )
    written += len(gauges)
    # Older minutes were summarized by earlier runs; the no-Redis store keeps rows for them.
    store.forget_minutes_before(last - 3600)
    moved = drain_slow(store)
    units = {"_ms": "ms", "_percent": "%", "_per_s": "/s"}
    observations = [
        Observation(
            metric=m,
            host=APP_HOST,
            value=v,
            unit=next((u for s, u in units.items() if m.endswith(s)), ""),
            part=k,
        )
        for m, k, v, _n in newest + gauges
        if not m.startswith("route_")
    ]
    transitions = evaluate(observations, now)
    return {"rows": written, "slow": moved, "transitions": transitions}


def _gauges(store: Any, now: datetime) -> list[tuple[str, str, float, int]]:
    rows: list[tuple[str, str, float, int]] = []
    window = settings.OPS_METRICS_ACTIVE_USER_WINDOW.total_seconds()
    try:
        rows.append(("active_users", "", float(store.active_users(now.timestamp() - window)), 0))
    except Exception:
        logger.warning("active users could not be read", exc_info=True)
    for queue, depth in queue_depths().items():
        rows.append(("queue_depth", queue, float(depth), 0))
    rate = cache_hit_rate()
    if rate is not None:
        rows.append(("cache_hit_rate_percent", "", rate[0], rate[1]))
    return rows


def drain_slow(store: Any) -> int:
    items = store.pop_slow(1000)
    requests, queries = [], []
    for item in items:
        data = dict(item)
        kind = data.pop("kind", "")
        data["created_at"] = datetime.fromtimestamp(data.pop("at"), tz=UTC)
        if kind == "request":
            requests.append(SlowRequest(**data))
        elif kind == "query":
            query = SlowQuery(**data)
            query.normalized = normalize_sql(query.sql)
            query.fingerprint = fingerprint(query.normalized)
            queries.append(query)
    SlowRequest.objects.bulk_create(requests)
    SlowQuery.objects.bulk_create(queries)
    return len(items)


# --- queue depth -----------------------------------------------------------------------------
PRIORITY_SEP = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)


def measured_queues() -> list[str]:
    """OPS_METRICS_QUEUES, or else the Celery app's default queue and the error digest's."""
    configured = list(settings.OPS_METRICS_QUEUES)
    if configured:
        return configured
    default = str(celery_conf().task_default_queue or "celery")
    return list(dict.fromkeys([default, settings.OPS_ERRORS_DIGEST_QUEUE]))


def queue_depths() -> dict[str, int]:
    """Messages waiting per configured queue, read from the broker itself. Reserved
    (prefetched) messages are not waiting and are not counted. Unknown brokers give nothing."""
    conf = celery_conf()
    broker = str(conf.broker_url)
    queues = measured_queues()
    try:
        if broker.startswith(("redis://", "rediss://", "unix://")):
            client = redis_client(broker)
            pipe = client.pipeline(transaction=False)
            for queue in queues:
                pipe.llen(queue)
                for step in PRIORITY_STEPS:
                    pipe.llen(f"{queue}{PRIORITY_SEP}{step}")
            counts = pipe.execute()
            per = 1 + len(PRIORITY_STEPS)
            return {q: int(sum(counts[i * per : (i + 1) * per])) for i, q in enumerate(queues)}
        if broker.startswith("filesystem://"):
            options = conf.broker_transport_options or {}
            folder = Path(str(options.get("data_folder_in", "")))
            if not folder.is_dir():
                return {}
            depths = dict.fromkeys(queues, 0)
            with os.scandir(folder) as entries:
                for entry in entries:
                    queue = entry.name.partition(".")[2].removesuffix(".msg")
                    if queue in depths:
                        depths[queue] += 1
            return depths
    except Exception:
        logger.warning("queue depth could not be read from the broker", exc_info=True)
    return {}


# --- cache hit rate --------------------------------------------------------------------------
def cache_hit_rate(url: str | None = None) -> tuple[float, int] | None:
    """Hit rate (percent, lookups) of the Redis server since the previous call, from INFO's
    keyspace_hits/keyspace_misses counters. None on the first call, after a Redis restart
    (counters went down) or when there were no lookups: nothing was measured then.

    The previous reading is kept in Redis itself; reading it is a lookup too, so the stored
    reading is corrected by that one hit or miss and our own bookkeeping never shows up."""
    url = url or settings.REDIS_URL
    if not url:
        return None
    try:
        client = redis_client(url)
        info = client.info("stats")
        hits, misses = int(info["keyspace_hits"]), int(info["keyspace_misses"])
        key = f"{settings.OPS_METRICS_KEY_PREFIX}:cache_prev"
        previous = client.get(key)
        # Stored as they stand after that GET, so the next delta leaves it out.
        after = [hits, misses + 1] if previous is None else [hits + 1, misses]
        client.set(key, json.dumps(after), ex=7 * 86400)
    except Exception:
        logger.warning("cache statistics could not be read from Redis", exc_info=True)
        return None
    if previous is None:
        return None
    old_hits, old_misses = json.loads(previous)[:2]
    d_hits, d_misses = hits - old_hits, misses - old_misses
    if d_hits < 0 or d_misses < 0 or d_hits + d_misses == 0:
        return None
    return 100.0 * d_hits / (d_hits + d_misses), d_hits + d_misses


# --- host resources --------------------------------------------------------------------------
_cpu_primed_pid = 0


def _cpu_percent() -> float:
    """CPU busy % since the previous call in this process (the minute between two runs);
    the first call in a process measures over half a second instead of returning psutil's 0."""
    global _cpu_primed_pid
    if _cpu_primed_pid != os.getpid():
        _cpu_primed_pid = os.getpid()
        return float(psutil.cpu_percent(interval=0.5))
    return float(psutil.cpu_percent(interval=None))


def net_rates(
    previous: ResourceUsage | None, recv: int, sent: int, at: datetime
) -> tuple[float | None, float | None]:
    """Bytes/s in and out between two samples; None without a usable previous sample
    (none, too old, or a counter that went backwards after a reboot)."""
    if previous is None:
        return None, None
    seconds = (at - previous.recorded_at).total_seconds()
    if seconds <= 0 or seconds > 15 * 60:
        return None, None
    d_in = recv - previous.net_bytes_recv_total
    d_out = sent - previous.net_bytes_sent_total
    return (d_in / seconds if d_in >= 0 else None, d_out / seconds if d_out >= 0 else None)


def sample_host(
    at: datetime, previous: ResourceUsage | None, host: str | None = None
) -> ResourceUsage:
    """One psutil reading of this machine (not saved)."""
    memory = psutil.virtual_memory()
    swap = psutil.swap_memory()
    disks: dict[str, dict[str, float]] = {}
    for path in settings.OPS_METRICS_DISK_PATHS:
        try:
            usage = psutil.disk_usage(path)
        except OSError:
            logger.warning("disk %s could not be read; is OPS_METRICS_DISK_PATHS right?", path)
            continue
        disks[path] = {"total": usage.total, "used": usage.used, "percent": usage.percent}
    net = psutil.net_io_counters()
    try:
        connections: int | None = len(psutil.net_connections(kind="inet"))
    except (psutil.AccessDenied, OSError):
        connections = None
    load_1, load_5, load_15 = psutil.getloadavg()
    rate_in, rate_out = net_rates(previous, net.bytes_recv, net.bytes_sent, at)
    used = memory.total - memory.available
    return ResourceUsage(
        recorded_at=at,
        host=host or settings.OPS_HOST_NAME,
        cpu_percent=_cpu_percent(),
        cpu_count=psutil.cpu_count() or 1,
        memory_percent=100.0 * used / memory.total if memory.total else 0.0,
        memory_used_bytes=used,
        memory_total_bytes=memory.total,
        swap_percent=float(swap.percent),
        swap_used_bytes=swap.used,
        disks=disks,
        net_bytes_recv_total=net.bytes_recv,
        net_bytes_sent_total=net.bytes_sent,
        net_bytes_in_per_s=rate_in,
        net_bytes_out_per_s=rate_out,
        net_connections=connections,
        process_count=len(psutil.pids()),
        load_1=load_1,
        load_5=load_5,
        load_15=load_15,
    )


def resource_observations(row: ResourceUsage) -> list[Observation]:
    obs = [
        Observation("cpu_percent", row.host, row.cpu_percent, "%"),
        Observation("memory_percent", row.host, row.memory_percent, "%"),
        Observation("swap_percent", row.host, row.swap_percent, "%"),
        Observation("load_per_core", row.host, row.load_1 / max(1, row.cpu_count), ""),
    ]
    for mount, disk in row.disks.items():
        obs.append(Observation("disk_percent", row.host, float(disk["percent"]), "%", mount))
    return obs


def collect_resource_usage(
    now: datetime | None = None, *, skip_if_sampled: bool = False
) -> dict[str, Any]:
    """Sample this host and store it for the current minute; evaluate host thresholds.
    With skip_if_sampled, a host already sampled this minute (another worker on the same
    machine) is left alone: a second CPU reading milliseconds later would only be noise."""
    now = now or timezone.now()
    host = settings.OPS_HOST_NAME
    at = _minute_dt(current_minute(now.timestamp()))
    if skip_if_sampled and ResourceUsage.objects.filter(host=host, recorded_at=at).exists():
        mark_seen(host, now)  # alive, though its minute already has a sample
        return {"host": host, "recorded_at": at.isoformat(), "skipped": True}
    previous = (
        ResourceUsage.objects.filter(host=host, recorded_at__lt=at).order_by("-recorded_at").first()
    )
    row = sample_host(at, previous, host)
    fields = [
        f.name
        for f in ResourceUsage._meta.concrete_fields
        if f.name not in {"id", "host", "recorded_at"}
    ]
    ResourceUsage.objects.bulk_create(
        [row], update_conflicts=True, unique_fields=["host", "recorded_at"], update_fields=fields
    )
    mark_seen(host, now)
    transitions = evaluate(resource_observations(row), now)
    return {"host": host, "recorded_at": at.isoformat(), "transitions": transitions}


__all__ = [
    "cache_hit_rate",
    "collect_performance_metrics",
    "collect_resource_usage",
    "net_rates",
    "queue_depths",
    "sample_host",
    "summarize_minute",
]
