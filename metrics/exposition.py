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
from itertools import accumulate
from typing import Any

from django.apps import apps
from django.conf import settings
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry

from metrics.histogram import EXPOSED_LE, EXPOSED_SLOTS
from metrics.recorder import SEP
from metrics.store import get_store

logger = logging.getLogger("opsconsole.metrics")

HOST_STALE_AFTER = timedelta(minutes=10)
_BUCKET_KEYS = tuple(f"b{i}" for i in range(EXPOSED_SLOTS))
_REQ = "req" + SEP
# Label sets of the request families by field head, kept across scrapes (bounded).
_labels: dict[str, str] = {}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Text:
    """Text-format writer for the high-cardinality families (one histogram per route):
    each label set is escaped once and reused for its bucket lines, which keeps a scrape of
    hundreds of routes within milliseconds. The output is checked with prometheus-client's
    parser in the tests."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self._templates: dict[tuple[str, bool], str] = {}

    def header(self, name: str, kind: str, doc: str) -> None:
        self.parts.append(f"# HELP {name} {doc}\n# TYPE {name} {kind}\n")

    def _template(self, name: str, labelled: bool) -> str:
        """All lines of one histogram as a single str.format template ({0}: the label set,
        then the cumulative bucket counts, the last of which is the count, then the sum):
        one C-level format call per label set instead of a string per line."""
        key = (name, labelled)
        template = self._templates.get(key)
        if template is None:
            sep, braces = ("{0},", "{{{0}}}") if labelled else ("", "")
            lines = [
                f'{name}_bucket{{{{{sep}le="{le}"}}}} {{{i + 1}}}\n'
                for i, le in enumerate(EXPOSED_LE)
            ]
            n = len(EXPOSED_LE)
            lines.append(f"{name}_count{braces} {{{n}}}\n{name}_sum{braces} {{{n + 1}}}\n")
            template = self._templates[key] = "".join(lines)
        return template

    def histogram(self, name: str, labels: str, slots: list[float], total: float) -> None:
        counts = list(accumulate(slots))
        self.parts.append(self._template(name, bool(labels)).format(labels, *counts, total))

    def sample(self, name: str, labels: str, value: float) -> None:
        braces = f"{{{labels}}}" if labels else ""
        self.parts.append(f"{name}{braces} {float(value)}\n")

    def text(self) -> str:
        return "".join(self.parts)


def request_text(totals: dict[str, float]) -> str:
    """Request, database and task families from the all-time totals (exposed buckets)."""
    requests, tasks, db = _split_totals(totals)
    out = _Text()
    _request_families(out, requests)
    _db_family(out, db)
    _task_families(out, tasks)
    return out.text()


def _split_totals(
    totals: dict[str, float],
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]], dict[str, float]]:
    """The totals grouped: per request key, per task, and the database's own."""
    # Keyed by the field name up to its suffix ("req\troute\tmethod\tstatus"): one C-level
    # rpartition per field, and the label set is built once per key, not once per field.
    requests: dict[str, dict[str, float]] = defaultdict(dict)
    tasks: dict[str, dict[str, float]] = defaultdict(dict)
    db: dict[str, float] = {}
    for name, value in totals.items():
        if name.startswith(_REQ):
            head, _, suffix = name.rpartition(SEP)
            requests[head][suffix] = value
            continue
        parts = name.split(SEP)
        kind = parts[0]
        if kind == "task" and len(parts) >= 3:
            tasks[parts[1]][SEP.join(parts[2:])] = value
        elif kind == "db" and len(parts) == 2:
            db[parts[1]] = value
    return requests, tasks, db


def _request_labels(requests: dict[str, dict[str, float]]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for head in sorted(requests):  # the tab sorts first: the order of (route, method, status)
        label = _labels.get(head)
        if label is None:
            parts = head.split(SEP)
            if len(parts) != 4:
                continue
            label = f'route="{_escape(parts[1])}",method="{_escape(parts[2])}",status="{parts[3]}"'
            if len(_labels) < 20_000:
                _labels[head] = label
        labels[head] = label
    return labels


def _request_families(out: _Text, requests: dict[str, dict[str, float]]) -> None:
    labels = _request_labels(requests)
    name = "http_request_duration_seconds"
    out.header(name, "histogram", "Request duration by route pattern.")
    for head, label in labels.items():
        agg = requests[head]
        slots = [agg.get(k, 0.0) for k in _BUCKET_KEYS]
        out.histogram(name, label, slots, agg.get("s", 0.0))
    for name, suffix, doc in (
        ("http_requests_total", "n", "Requests by route pattern."),
        ("http_request_db_queries_total", "qn", "Database queries run by requests."),
        ("http_request_db_duration_seconds_total", "qs", "Time requests spent in the database."),
    ):
        out.header(name, "counter", doc)
        out.parts.extend(
            [
                f"{name}{{{label}}} {float(requests[head].get(suffix, 0.0))}\n"
                for head, label in labels.items()
            ]
        )


def _db_family(out: _Text, db: dict[str, float]) -> None:
    name = "db_query_duration_seconds"
    out.header(name, "histogram", "Duration of database queries run by requests.")
    if db:
        out.histogram(
            name, "", [db.get(f"b{i}", 0.0) for i in range(EXPOSED_SLOTS)], db.get("s", 0.0)
        )


def _task_families(out: _Text, tasks: dict[str, dict[str, float]]) -> None:
    task_labels = {task: f'task="{_escape(task)}"' for task in sorted(tasks)}
    for name, prefix, doc in (
        ("celery_task_runtime_seconds", "r", "Task run time, measured in the worker."),
        ("celery_task_wait_seconds", "w", "Time from publish (or ETA) to start."),
    ):
        out.header(name, "histogram", doc)
        for task, label in task_labels.items():
            agg = tasks[task]
            if agg.get(f"{prefix}n"):
                slots = [agg.get(f"{prefix}b{i}", 0.0) for i in range(EXPOSED_SLOTS)]
                out.histogram(name, label, slots, agg.get(f"{prefix}s", 0.0))
    name = "celery_tasks_total"
    out.header(name, "counter", "Finished tasks by state.")
    for task, label in task_labels.items():
        for suffix, value in sorted(tasks[task].items()):
            if suffix.startswith("n" + SEP):
                state = _escape(suffix.split(SEP, 1)[1])
                out.sample(name, f'{label},state="{state}"', value)


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


_discovered: dict[tuple[str, ...], list[tuple[str, Any]]] = {}


def app_collectors() -> list[tuple[str, Any]]:
    """`collect` of every installed app that has a prometheus.py (except this one); looked
    up once per set of installed apps, not on every scrape."""
    names = tuple(c.name for c in apps.get_app_configs())
    if names not in _discovered:
        _discovered[names] = _discover()
    return _discovered[names]


def _discover() -> list[tuple[str, Any]]:
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

    def __init__(self, errors: dict[str, float] | None = None) -> None:
        self.seed = errors or {}

    def collect(self) -> Iterable[Metric]:
        errors = GaugeMetricFamily(
            "ops_metrics_collector_errors",
            "1 when a part of this scrape failed (see the console logs).",
            labels=["collector"],
        )
        for name, failed in self.seed.items():
            errors.add_metric([name], failed)
        parts = [
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


def registry(errors: dict[str, float] | None = None) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(OpsCollector(errors))
    return reg


def render() -> bytes:
    """The whole /metrics body: the counters' families, then every collector's."""
    try:
        head = request_text(get_store().totals())
        failed = 0.0
    except Exception:
        logger.warning("metrics collector requests failed", exc_info=True)
        head, failed = "", 1.0
    return head.encode() + generate_latest(registry({"requests": failed}))
