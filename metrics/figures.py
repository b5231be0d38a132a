"""The figures behind the metrics detail pages: per route, per task, slow queries by shape, and
capacity forecasts in words. Every figure is read from stored rows; nothing is estimated.

Per-route and per-task percentiles are stored per minute (metrics.collectors), not as
histograms, so a percentile over a period is the per-minute figure averaged over the period,
weighted by the requests (or task runs) behind each minute. Whole hours that are already rolled
up are read from the hourly rollups (there each hour's average is weighted by its requests), the
rest from the minute rows: a 24-hour table reads about 23 rollup rows per series, not 1,440.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Aggregate, Count, ExpressionWrapper, F, FloatField, Max, Sum

from metrics.models import MetricRollup, PerformanceMetric, SlowQuery
from metrics.reports import percentile

ROUTE_METRICS = (
    "route_requests",
    "route_response_time_p50_ms",
    "route_response_time_p95_ms",
    "route_response_time_p99_ms",
    "route_errors",
    "route_queries_per_request",
    "route_query_time_avg_ms",
)
TASK_METRICS = (
    "task_count",
    "task_failures",
    "task_runtime_avg_ms",
    "task_runtime_p95_ms",
    "task_wait_p95_ms",
)
ROUTE_COLUMNS = ("route", "rpm", "p50", "p95", "p99", "error_rate", "queries", "query_ms")
TASK_COLUMNS = ("task", "runs", "failure_rate", "runtime_avg", "runtime_p95", "wait_p95")
# Bounds: a table is for reading, not an export.
MAX_ROWS = 500
MAX_QUERY_GROUPS = 50
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Figure:
    """One series summed over a period: the values' total, the observations behind them, and
    the sum of value x observations (for a weighted mean)."""

    total: float
    samples: float
    weighted: float

    @property
    def mean(self) -> float | None:
        return self.weighted / self.samples if self.samples else None

    def __add__(self, other: Figure) -> Figure:
        return Figure(
            self.total + other.total, self.samples + other.samples, self.weighted + other.weighted
        )


def _raw_rows(metrics: list[str], start: datetime, end: datetime) -> Any:
    return (
        PerformanceMetric.objects.filter(
            metric__in=metrics, recorded_at__gte=start, recorded_at__lt=end
        )
        .exclude(key="")
        .values("metric", "key")
        .annotate(
            total=Sum("value"),
            obs=Sum("samples"),
            weighted=Sum(ExpressionWrapper(F("value") * F("samples"), output_field=FloatField())),
        )
        .order_by()
    )


def _hourly_rows(metrics: list[str], start: datetime, end: datetime) -> Any:
    return (
        MetricRollup.objects.filter(
            period=MetricRollup.Period.HOUR, metric__in=metrics, bucket__gte=start, bucket__lt=end
        )
        .exclude(key="")
        .values("metric", "key")
        .annotate(
            total=Sum("sum"),
            obs=Sum("samples"),
            weighted=Sum(
                ExpressionWrapper(F("sum") * F("samples") / F("count"), output_field=FloatField())
            ),
        )
        .order_by()
    )


def rolled_hours(metrics: list[str], start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The whole hours inside [start, end) that the hourly rollups already cover (an empty
    range when there are none): read from the rollups, the rest from the minute rows."""
    first = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if first < start:
        first += HOUR
    newest = (
        MetricRollup.objects.filter(
            period=MetricRollup.Period.HOUR, metric__in=metrics, bucket__gte=first, bucket__lt=end
        )
        .order_by("-bucket")
        .values_list("bucket", flat=True)
        .first()
    )
    last = end.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if newest is None:
        return first, first
    return first, max(first, min(last, newest + HOUR))


def keyed_figures(
    metrics: Iterable[str], start: datetime, end: datetime
) -> dict[str, dict[str, Figure]]:
    """{key: {metric: Figure}} for the keyed series of `metrics` over [start, end): whole hours
    already rolled up from the hourly rollups (each hour's mean weighted by its observations),
    the edges and the newest minutes from the minute rows."""
    metrics = list(metrics)
    hours_start, hours_end = rolled_hours(metrics, start, end)
    parts = [_hourly_rows(metrics, hours_start, hours_end)] if hours_end > hours_start else []
    if hours_end > hours_start:
        parts += [_raw_rows(metrics, start, hours_start), _raw_rows(metrics, hours_end, end)]
    else:
        parts.append(_raw_rows(metrics, start, end))
    out: dict[str, dict[str, Figure]] = defaultdict(dict)
    for rows in parts:
        for r in rows:
            figure = Figure(float(r["total"] or 0), float(r["obs"] or 0), float(r["weighted"] or 0))
            before = out[r["key"]].get(r["metric"])
            out[r["key"]][r["metric"]] = figure if before is None else before + figure
    return out


def _mean(figures: dict[str, Figure], metric: str) -> float | None:
    figure = figures.get(metric)
    return None if figure is None else figure.mean


def _ratio_percent(figures: dict[str, Figure], metric: str) -> float | None:
    """A count series as a percentage of the observations behind it (5xx of requests)."""
    figure = figures.get(metric)
    if figure is None or not figure.samples:
        return None
    return figure.total / figure.samples * 100.0


def sort_rows(rows: list[dict[str, Any]], sort: str, columns: tuple[str, ...]) -> None:
    """Sorts in place by a whitelisted column ("-" first for descending); rows without the
    figure go last either way. Raises ValueError on an unknown column."""
    column = sort.removeprefix("-")
    if column not in columns:
        raise ValueError(f"sort must be one of {', '.join(columns)} (with - for descending)")
    descending = sort.startswith("-")
    present = [r for r in rows if r[column] is not None]
    missing = [r for r in rows if r[column] is None]
    present.sort(key=lambda r: r[column], reverse=descending)
    rows[:] = present + missing


def route_table(start: datetime, end: datetime, sort: str = "-rpm") -> list[dict[str, Any]]:
    """One row per route measured in [start, end)."""
    minutes = max((end - start).total_seconds() / 60.0, 1.0)
    rows = []
    for route, figures in keyed_figures(ROUTE_METRICS, start, end).items():
        requests = figures.get("route_requests")
        if requests is None or not requests.total:
            continue
        rows.append(
            {
                "route": route,
                "requests": int(requests.total),
                "rpm": requests.total / minutes,
                "p50": _mean(figures, "route_response_time_p50_ms"),
                "p95": _mean(figures, "route_response_time_p95_ms"),
                "p99": _mean(figures, "route_response_time_p99_ms"),
                "error_rate": _ratio_percent(figures, "route_errors"),
                "queries": _mean(figures, "route_queries_per_request"),
                "query_ms": _mean(figures, "route_query_time_avg_ms"),
            }
        )
    sort_rows(rows, sort, ROUTE_COLUMNS)
    return rows[:MAX_ROWS]


def task_table(start: datetime, end: datetime, sort: str = "-runtime_p95") -> list[dict[str, Any]]:
    """One row per task name that ran in [start, end): runs, failures and timings."""
    rows = []
    for task, figures in keyed_figures(TASK_METRICS, start, end).items():
        runs = figures.get("task_count")
        failures = figures.get("task_failures")
        rows.append(
            {
                "task": task,
                "runs": int(runs.total) if runs else None,
                "failure_rate": (
                    failures.total / runs.total * 100.0
                    if runs and runs.total and failures
                    else None
                ),
                "runtime_avg": _mean(figures, "task_runtime_avg_ms"),
                "runtime_p95": _mean(figures, "task_runtime_p95_ms"),
                "wait_p95": _mean(figures, "task_wait_p95_ms"),
            }
        )
    sort_rows(rows, sort, TASK_COLUMNS)
    return rows[:MAX_ROWS]


class _Percentile95(Aggregate):
    """PostgreSQL's percentile_cont(0.95): the same interpolation as metrics.reports.percentile."""

    function = "percentile_cont"
    template = "%(function)s(0.95) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def slow_query_groups(start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Slow queries in [start, end) grouped by normalised SQL, most total time first: count,
    total, p95 and max time, and the newest statement of the group as its example. The p95 (a
    sort per group) is computed for the groups shown only."""
    window = SlowQuery.objects.filter(created_at__gte=start, created_at__lt=end)
    grouped: Any = window.values("fingerprint").annotate(
        count=Count("id"), total_ms=Sum("duration_ms"), max_ms=Max("duration_ms"), newest=Max("id")
    )
    groups: list[dict[str, Any]] = list(grouped.order_by("-total_ms")[:MAX_QUERY_GROUPS])
    shown = window.filter(fingerprint__in=[g["fingerprint"] for g in groups])
    if connection.vendor == "postgresql":
        p95: dict[str, float] = dict(
            shown.values("fingerprint")
            .annotate(p95=_Percentile95("duration_ms"))
            .order_by()
            .values_list("fingerprint", "p95")
        )
    else:
        durations: dict[str, list[float]] = defaultdict(list)
        for fp, ms in shown.values_list("fingerprint", "duration_ms"):
            durations[fp].append(ms)
        p95 = {fp: percentile(values, 95) for fp, values in durations.items()}
    examples = {
        pk: (sql, shape)
        for pk, sql, shape in SlowQuery.objects.filter(
            pk__in=[g["newest"] for g in groups]
        ).values_list("pk", "sql", "normalized")
    }
    for group in groups:
        group["example"], group["shape"] = examples.get(group["newest"], ("", ""))
        group["p95_ms"] = p95.get(group["fingerprint"])
    return groups


def days_in_words(days: float | None, full: str, points: int) -> str:
    """A forecast in words: "full in about 12 days", "no growth", "full now"."""
    if points < 2:
        return "not enough samples to forecast"
    if days is None:
        return "no growth"
    if days < 0.5:
        return f"{full} now" if days == 0 else f"{full} within a day"
    if days > 3650:
        return "no growth that matters (more than ten years)"
    rounded = round(days)
    return f"{full} in about {rounded} day{'s' if rounded != 1 else ''}"


def forecasts(entry: dict[str, Any]) -> list[str]:
    """One host's capacity forecasts (from metrics.reports.get_resource_report) as sentences."""
    lines = []
    forecast = entry.get("forecast", {})
    memory = entry.get("metrics", {}).get("memory_percent")
    if "memory_days_until_exhausted" in forecast:
        words = days_in_words(
            forecast["memory_days_until_exhausted"], "exhausted", memory["points"] if memory else 0
        )
        lines.append(f"memory: {words}")
    for mount, days in sorted(forecast.get("disk_days_until_full", {}).items()):
        points = entry.get("disks", {}).get(mount, {}).get("points", 0)
        lines.append(f"disk {mount}: {days_in_words(days, 'full', points)}")
    return lines
