"""The /metrics payload: one collector reading the shared counters, plus every app's own.

There are no per-process metric files: every process adds its counters to Redis (or the
database) and a scrape reads the merged totals, so the answer is the same whichever gunicorn
worker serves it and nothing piles up as workers are recycled.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from importlib import import_module
from importlib.util import find_spec
from typing import Any

from django.apps import apps
from django.conf import settings
from django.utils import timezone
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import CollectorRegistry

from metrics.histogram import SLOTS, cumulative
from metrics.recorder import SEP
from metrics.store import get_store

logger = logging.getLogger("opsconsole.metrics")

HOST_STALE_AFTER = timedelta(minutes=10)


def request_families(totals: dict[str, float]) -> list[Metric]:
    requests: dict[tuple[str, ...], dict[str, float]] = defaultdict(dict)
    tasks: dict[str, dict[str, float]] = defaultdict(dict)
    db: dict[str, float] = {}
    for name, value in totals.items():
        parts = name.split(SEP)
        kind = parts[0]
        if kind == "req" and len(parts) == 5:
            requests[tuple(parts[1:4])][parts[4]] = value
        elif kind == "task" and len(parts) >= 3:
            tasks[parts[1]][SEP.join(parts[2:])] = value
        elif kind == "db" and len(parts) == 2:
            db[parts[1]] = value
    labels = ["route", "method", "status"]
    duration = HistogramMetricFamily(
        "http_request_duration_seconds", "Request duration by route pattern.", labels=labels
    )
    count = CounterMetricFamily("http_requests", "Requests by route pattern.", labels=labels)
    queries = CounterMetricFamily(
        "http_request_db_queries", "Database queries run by requests.", labels=labels
    )
    query_time = CounterMetricFamily(
        "http_request_db_duration_seconds", "Time requests spent in the database.", labels=labels
    )
    for key, agg in sorted(requests.items()):
        slots = [agg.get(f"b{i}", 0.0) for i in range(SLOTS)]
        duration.add_metric(list(key), cumulative(slots), agg.get("s", 0.0))
        count.add_metric(list(key), agg.get("n", 0.0))
        queries.add_metric(list(key), agg.get("qn", 0.0))
        query_time.add_metric(list(key), agg.get("qs", 0.0))
    families: list[Metric] = [duration, count, queries, query_time]
    db_hist = HistogramMetricFamily(
        "db_query_duration_seconds", "Duration of database queries run by requests."
    )
    if db:
        db_hist.add_metric(
            [], cumulative([db.get(f"b{i}", 0.0) for i in range(SLOTS)]), db.get("s", 0.0)
        )
    families.append(db_hist)
    runtime = HistogramMetricFamily(
        "celery_task_runtime_seconds", "Task run time, measured in the worker.", labels=["task"]
    )
    wait = HistogramMetricFamily(
        "celery_task_wait_seconds", "Time from publish (or ETA) to start.", labels=["task"]
    )
    done = CounterMetricFamily("celery_tasks", "Finished tasks by state.", labels=["task", "state"])
    for task, agg in sorted(tasks.items()):
        if agg.get("rn"):
            slots = [agg.get(f"rb{i}", 0.0) for i in range(SLOTS)]
            runtime.add_metric([task], cumulative(slots), agg.get("rs", 0.0))
        if agg.get("wn"):
            slots = [agg.get(f"wb{i}", 0.0) for i in range(SLOTS)]
            wait.add_metric([task], cumulative(slots), agg.get("ws", 0.0))
        for suffix, value in agg.items():
            if suffix.startswith("n" + SEP):
                done.add_metric([task, suffix.split(SEP, 1)[1]], value)
    families += [runtime, wait, done]
    return families


def queue_families() -> list[Metric]:
    from metrics.collectors import queue_depths

    depth = GaugeMetricFamily(
        "celery_queue_depth", "Messages waiting in the broker.", labels=["queue"]
    )
    for queue, value in sorted(queue_depths().items()):
        depth.add_metric([queue], value)
    families: list[Metric] = [depth]
    from health.models import WorkerHeartbeat

    max_age = timedelta(seconds=float(getattr(settings, "OPS_HEALTH_WORKER_MAX_AGE", 60)))
    online = WorkerHeartbeat.objects.filter(last_seen__gte=timezone.now() - max_age).count()
    families.append(
        GaugeMetricFamily("celery_workers_online", "Workers with a fresh heartbeat.", value=online)
    )
    return families


def host_families() -> list[Metric]:
    from metrics.models import ResourceUsage

    since = timezone.now() - HOST_STALE_AFTER
    latest: dict[str, ResourceUsage] = {}
    for row in ResourceUsage.objects.filter(recorded_at__gte=since).order_by("recorded_at"):
        latest[row.host] = row
    g: dict[str, GaugeMetricFamily] = {}

    def gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
        g[name] = GaugeMetricFamily(name, doc, labels=labels or ["host"])
        return g[name]

    cpu = gauge("host_cpu_usage_ratio", "CPU busy fraction over the last sample interval.")
    cores = gauge("host_cpu_cores", "Logical CPUs.")
    mem = gauge("host_memory_used_bytes", "Memory in use (total minus available).")
    mem_total = gauge("host_memory_total_bytes", "Physical memory.")
    swap = gauge("host_swap_used_bytes", "Swap in use.")
    disk = gauge("host_disk_used_bytes", "Disk in use per mount.", ["host", "mount"])
    disk_total = gauge("host_disk_total_bytes", "Disk size per mount.", ["host", "mount"])
    rx = gauge("host_network_receive_bytes_per_second", "Bytes/s received, all interfaces.")
    tx = gauge("host_network_transmit_bytes_per_second", "Bytes/s sent, all interfaces.")
    conns = gauge("host_network_connections", "Open inet connections.")
    procs = gauge("host_processes", "Processes.")
    loads = {n: gauge(f"host_load{n}", f"{n}-minute load average.") for n in (1, 5, 15)}
    stamp = gauge("host_sample_timestamp_seconds", "When the host was last sampled.")
    for host, row in sorted(latest.items()):
        cpu.add_metric([host], row.cpu_percent / 100.0)
        cores.add_metric([host], row.cpu_count)
        mem.add_metric([host], row.memory_used_bytes)
        mem_total.add_metric([host], row.memory_total_bytes)
        swap.add_metric([host], row.swap_used_bytes)
        for mount, d in sorted((row.disks or {}).items()):
            disk.add_metric([host, mount], d["used"])
            disk_total.add_metric([host, mount], d["total"])
        if row.net_bytes_in_per_s is not None:
            rx.add_metric([host], row.net_bytes_in_per_s)
        if row.net_bytes_out_per_s is not None:
            tx.add_metric([host], row.net_bytes_out_per_s)
        if row.net_connections is not None:
            conns.add_metric([host], row.net_connections)
        procs.add_metric([host], row.process_count)
        loads[1].add_metric([host], row.load_1)
        loads[5].add_metric([host], row.load_5)
        loads[15].add_metric([host], row.load_15)
        stamp.add_metric([host], row.recorded_at.timestamp())
    return list(g.values())


def app_gauge_families() -> list[Metric]:
    """The newest collected cache hit rate and active users (measured by the collectors)."""
    from metrics.models import PerformanceMetric

    families: list[Metric] = []
    since = timezone.now() - HOST_STALE_AFTER
    for metric, name, doc, scale in (
        (
            "cache_hit_rate_percent",
            "cache_hit_ratio",
            "Redis keyspace hit ratio, last minute.",
            0.01,
        ),
        ("active_users", "active_users", "Users seen in the active-user window.", 1.0),
    ):
        row = (
            PerformanceMetric.objects.filter(metric=metric, key="", recorded_at__gte=since)
            .order_by("-recorded_at")
            .values_list("value", flat=True)
            .first()
        )
        if row is not None:
            families.append(GaugeMetricFamily(name, doc, value=row * scale))
    return families


def health_families() -> list[Metric]:
    from health.models import ComponentState

    family = GaugeMetricFamily(
        "health_component_status",
        "1 for the component's current status (pass, warn or fail), 0 for the others.",
        labels=["component", "status"],
    )
    for state in ComponentState.objects.order_by("component"):
        for status in ("pass", "warn", "fail"):
            family.add_metric([state.component, status], 1.0 if state.status == status else 0.0)
    return [family]


def app_collectors() -> list[tuple[str, Any]]:
    """`collect` of every installed app that has a prometheus.py (except this one)."""
    found = []
    for config in apps.get_app_configs():
        module_name = f"{config.name}.prometheus"
        if config.name == "metrics":
            continue
        try:
            if find_spec(module_name) is None:
                continue
            module = import_module(module_name)
        except Exception:
            logger.warning("%s could not be imported", module_name, exc_info=True)
            found.append((config.label, None))
            continue
        collect = getattr(module, "collect", None)
        found.append((config.label, collect if callable(collect) else None))
    return found


class OpsCollector:
    """A prometheus-client collector; each part fails alone and is reported, not raised."""

    def collect(self) -> Iterable[Metric]:
        errors = GaugeMetricFamily(
            "ops_metrics_collector_errors",
            "1 when a part of this scrape failed (see the console logs).",
            labels=["collector"],
        )
        parts = [
            ("requests", lambda: request_families(get_store().totals())),
            ("queues", queue_families),
            ("hosts", host_families),
            ("gauges", app_gauge_families),
            ("health", health_families),
        ]
        for name, part in parts:
            try:
                families = list(part())
            except Exception:
                logger.warning("metrics collector %s failed", name, exc_info=True)
                errors.add_metric([name], 1.0)
                continue
            errors.add_metric([name], 0.0)
            yield from families
        for label, collect in app_collectors():
            try:
                if collect is None:
                    raise TypeError(f"{label}.prometheus has no collect()")
                families = list(collect())
            except Exception:
                logger.warning("prometheus collector of app %s failed", label, exc_info=True)
                errors.add_metric([f"app:{label}"], 1.0)
                continue
            errors.add_metric([f"app:{label}"], 0.0)
            yield from families
        yield errors


def registry() -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(OpsCollector())
    return reg
