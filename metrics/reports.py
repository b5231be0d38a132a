"""Performance and resource reports: averages, percentiles, peaks, trends and forecasts.

Every figure comes from stored rows; a series with no rows in the window is left out rather
than reported as zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from metrics.models import MetricRollup, PerformanceMetric, ResourceUsage
from metrics.rollups import DISK_METRICS, RESOURCE_FIELDS, Point, SeriesKey, series

PERFORMANCE_METRICS = (
    "request_rate_per_s",
    "response_time_avg_ms",
    "response_time_p50_ms",
    "response_time_p95_ms",
    "response_time_p99_ms",
    "error_rate_percent",
    "db_query_time_avg_ms",
    "db_query_time_p95_ms",
    "cache_hit_rate_percent",
    "active_users",
)
KEYED_PERFORMANCE_METRICS = (
    "queue_depth",
    "task_runtime_avg_ms",
    "task_runtime_p95_ms",
    "task_wait_avg_ms",
    "task_wait_p95_ms",
)
HOST_METRICS = (
    "cpu_percent",
    "memory_percent",
    "swap_percent",
    "load_1",
    "load_5",
    "load_15",
    "net_bytes_in_per_s",
    "net_bytes_out_per_s",
    "net_connections",
    "process_count",
)


def least_squares_slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Slope of the least-squares line through (x, y); None with fewer than two distinct x."""
    n = len(points)
    if n < 2:
        return None
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return sxy / sxx


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def half_change_percent(points: Sequence[Point]) -> float | None:
    """The seed's trend: % change of the second half's average over the first half's."""
    if len(points) < 2:
        return None
    mid = len(points) // 2
    first = sum(p.avg for p in points[:mid]) / mid
    second = sum(p.avg for p in points[mid:]) / (len(points) - mid)
    if first == 0:
        return None
    return (second - first) / abs(first) * 100.0


def summarize(points: Sequence[Point]) -> dict[str, Any] | None:
    if not points:
        return None
    values = [p.avg for p in points]
    weights = [p.rows for p in points]
    start = points[0].at
    slope = least_squares_slope([((p.at - start).total_seconds() / 3600.0, p.avg) for p in points])
    return {
        "avg": sum(v * w for v, w in zip(values, weights, strict=True)) / sum(weights),
        "min": min(p.min for p in points),
        "max": max(p.max for p in points),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "latest": points[-1].avg,
        "points": len(points),
        "trend": {
            "change_percent": half_change_percent(points),
            "slope_per_hour": slope,
            "direction": None if slope is None else _direction(slope, values),
        },
    }


def _direction(slope_per_hour: float, values: Sequence[float]) -> str:
    # Flat when the fitted line moves less than 1 % of the mean level over a day.
    scale = abs(sum(values) / len(values)) or 1.0
    if abs(slope_per_hour * 24) < 0.01 * scale:
        return "stable"
    return "increasing" if slope_per_hour > 0 else "decreasing"


def _window(hours: float, now: datetime | None) -> tuple[datetime, datetime]:
    if not (isinstance(hours, int | float) and 0 < hours <= 24 * 730):
        raise ValueError("hours must be a number between 0 and 17520 (two years)")
    end = now or timezone.now()
    return end - timedelta(hours=hours), end


def _keys_in(metric_names: Sequence[str], start: datetime, end: datetime) -> list[SeriesKey]:
    raw = PerformanceMetric.objects.filter(
        metric__in=metric_names, recorded_at__gte=start, recorded_at__lt=end
    ).values_list("metric", "key", "host")
    rolled = MetricRollup.objects.filter(
        metric__in=metric_names, bucket__gte=start, bucket__lt=end
    ).values_list("metric", "key", "host")
    return sorted(set(raw.distinct()) | set(rolled.distinct()))


def get_performance_report(hours: float = 24, *, now: datetime | None = None) -> dict[str, Any]:
    start, end = _window(hours, now)
    wanted = [(m, "", "") for m in PERFORMANCE_METRICS]
    wanted += _keys_in(KEYED_PERFORMANCE_METRICS, start, end)
    data = series(wanted, start, end)
    metrics: dict[str, Any] = {}
    keyed: dict[str, dict[str, Any]] = {}
    for (metric, key, _host), points in data.items():
        summary = summarize(points)
        if summary is None:
            continue
        if key:
            keyed.setdefault(metric, {})[key] = summary
        else:
            metrics[metric] = summary
    return {
        "window": {"start": start.isoformat(), "end": end.isoformat(), "hours": hours},
        "metrics": metrics,
        "by_key": keyed,
    }


def forecast_days(points: Sequence[Point], capacity: float) -> float | None:
    """Days until the fitted line of `points` reaches `capacity`; None when it is not rising
    (or there is too little data to fit a line)."""
    if len(points) < 2:
        return None
    start = points[0].at
    slope = least_squares_slope([((p.at - start).total_seconds() / 86400.0, p.avg) for p in points])
    if slope is None or slope <= 0:
        return None
    # From the fitted value now, not the last noisy sample.
    xs = [(p.at - start).total_seconds() / 86400.0 for p in points]
    mean_x = sum(xs) / len(xs)
    mean_y = sum(p.avg for p in points) / len(points)
    fitted_now = mean_y + slope * (xs[-1] - mean_x)
    remaining = capacity - fitted_now
    return max(0.0, remaining / slope)


def get_resource_report(hours: float = 24, *, now: datetime | None = None) -> dict[str, Any]:
    start, end = _window(hours, now)
    return {
        "window": {"start": start.isoformat(), "end": end.isoformat(), "hours": hours},
        "hosts": {host: _host_entry(host, start, end) for host in _hosts(start, end)},
    }


def _hosts(start: datetime, end: datetime) -> list[str]:
    """Every host sampled in the window, in raw rows or in rollups."""
    return sorted(
        set(
            ResourceUsage.objects.filter(recorded_at__gte=start, recorded_at__lt=end)
            .values_list("host", flat=True)
            .distinct()
        )
        | set(
            MetricRollup.objects.filter(
                metric__in=RESOURCE_FIELDS, bucket__gte=start, bucket__lt=end
            )
            .values_list("host", flat=True)
            .distinct()
        )
    )


def _mounts(host: str, start: datetime, end: datetime) -> list[str]:
    """The host's disks sampled in the window, in rollups or in raw rows."""
    return sorted(
        {
            k
            for (k,) in MetricRollup.objects.filter(
                metric="disk_percent", host=host, bucket__gte=start, bucket__lt=end
            )
            .values_list("key")
            .distinct()
        }
        | {
            m
            for disks in ResourceUsage.objects.filter(
                host=host, recorded_at__gte=start, recorded_at__lt=end
            ).values_list("disks", flat=True)
            for m in (disks or {})
        }
    )


def _host_entry(host: str, start: datetime, end: datetime) -> dict[str, Any]:
    """One host's summaries, disks and forecasts over the window."""
    mounts = _mounts(host, start, end)
    wanted: list[SeriesKey] = [(m, "", host) for m in HOST_METRICS]
    wanted += [("memory_used_bytes", "", host), ("memory_total_bytes", "", host)]
    for mount in mounts:
        wanted += [(m, mount, host) for m in DISK_METRICS]
    data = series(wanted, start, end)
    entry: dict[str, Any] = {"metrics": {}, "disks": {}, "forecast": {}}
    for metric in HOST_METRICS:
        summary = summarize(data[(metric, "", host)])
        if summary is not None:
            entry["metrics"][metric] = summary
    memory = data[("memory_used_bytes", "", host)]
    total = data[("memory_total_bytes", "", host)]
    if memory and total:
        entry["forecast"]["memory_days_until_exhausted"] = forecast_days(memory, total[-1].max)
    for mount in mounts:
        summary = summarize(data[("disk_percent", mount, host)])
        used = data[("disk_used_bytes", mount, host)]
        size = data[("disk_total_bytes", mount, host)]
        if summary is None:
            continue
        entry["disks"][mount] = summary
        if used and size:
            entry["forecast"].setdefault("disk_days_until_full", {})[mount] = forecast_days(
                used, size[-1].max
            )
    return entry
