"""Hourly and daily rollups, range reads that pick the right resolution, and retention.

Raw minute rows are kept for OPS_METRICS_RAW_DAYS (7), hourly rollups for
OPS_METRICS_HOURLY_DAYS (90), daily rollups for OPS_METRICS_DAILY_DAYS (730). A rollup holds
count/sum/min/max (and the observations behind them), recomputed from the finer rows for
every bucket it touches, so running it twice, or on two workers at once, writes the same rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection
from django.db.models import Count, Max, Min, Q, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from metrics.models import (
    CounterValue,
    MetricRollup,
    PerformanceMetric,
    ResourceUsage,
    SeenUser,
    SlowQuery,
    SlowRequest,
)
from opsconsole.retention import delete_in_batches

HOUR = MetricRollup.Period.HOUR
DAY = MetricRollup.Period.DAY

# Scalar ResourceUsage columns, rolled up (and charted) under their own names.
RESOURCE_FIELDS = (
    "cpu_percent",
    "memory_percent",
    "memory_used_bytes",
    "memory_total_bytes",
    "swap_percent",
    "swap_used_bytes",
    "net_bytes_in_per_s",
    "net_bytes_out_per_s",
    "net_connections",
    "process_count",
    "load_1",
    "load_5",
    "load_15",
)
# Disk figures live in ResourceUsage.disks, keyed by mount.
DISK_METRICS = {"disk_percent": "percent", "disk_used_bytes": "used", "disk_total_bytes": "total"}


def _floor(at: datetime, period: str) -> datetime:
    at = at.astimezone(UTC)
    if period == HOUR:
        return at.replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def _upsert(rows: list[MetricRollup]) -> int:
    for start in range(0, len(rows), 2000):
        MetricRollup.objects.bulk_create(
            rows[start : start + 2000],
            update_conflicts=True,
            unique_fields=["period", "metric", "key", "host", "bucket"],
            update_fields=["count", "sum", "min", "max", "samples"],
        )
    return len(rows)


def roll_up_hours(start: datetime, end: datetime) -> int:
    """(Re)build the hourly rollups of every hour in [start, end)."""
    start, end = _floor(start, HOUR), _floor(end, HOUR)
    if start >= end:
        return 0
    rows = _performance_rollups(start, end) + _resource_rollups(start, end)
    rows.extend(_disk_rollups(start, end))
    return _upsert(rows)


def _performance_rollups(start: datetime, end: datetime) -> list[MetricRollup]:
    perf = (
        PerformanceMetric.objects.filter(recorded_at__gte=start, recorded_at__lt=end)
        .annotate(bucket=TruncHour("recorded_at", tzinfo=UTC))
        .values("metric", "key", "host", "bucket")
        .annotate(
            n=Count("id"), s=Sum("value"), lo=Min("value"), hi=Max("value"), obs=Sum("samples")
        )
        .order_by()
    )
    return [_from_aggregate(HOUR, r["bucket"], r) for r in perf]


def _from_aggregate(period: str, bucket: datetime, r: Mapping[str, Any]) -> MetricRollup:
    """A rollup row from an aggregate over finer rows (n, s, lo, hi, obs)."""
    return MetricRollup(
        period=period,
        bucket=bucket,
        metric=r["metric"],
        key=r["key"],
        host=r["host"],
        count=r["n"],
        sum=r["s"],
        min=r["lo"],
        max=r["hi"],
        samples=r["obs"] or 0,
    )


def _resource_rollups(start: datetime, end: datetime) -> list[MetricRollup]:
    aggregates: dict[str, Any] = {}
    for name in RESOURCE_FIELDS:
        aggregates[f"{name}__n"] = Count(name)
        aggregates[f"{name}__s"] = Sum(name)
        aggregates[f"{name}__lo"] = Min(name)
        aggregates[f"{name}__hi"] = Max(name)
    resources = (
        ResourceUsage.objects.filter(recorded_at__gte=start, recorded_at__lt=end)
        .annotate(bucket=TruncHour("recorded_at", tzinfo=UTC))
        .values("host", "bucket")
        .annotate(**aggregates)
        .order_by()
    )
    rows: list[MetricRollup] = []
    for res in resources:
        row: dict[str, Any] = dict(res)
        for name in RESOURCE_FIELDS:
            if row[f"{name}__n"]:
                rows.append(
                    MetricRollup(
                        period=HOUR,
                        bucket=row["bucket"],
                        metric=name,
                        key="",
                        host=row["host"],
                        count=row[f"{name}__n"],
                        sum=float(row[f"{name}__s"]),
                        min=float(row[f"{name}__lo"]),
                        max=float(row[f"{name}__hi"]),
                    )
                )
    return rows


def _disk_rollups(start: datetime, end: datetime) -> list[MetricRollup]:
    # JSON per mount: aggregated here rather than with per-database JSON SQL.
    acc: dict[tuple[str, str, str, datetime], list[float]] = defaultdict(list)
    for host, at, disks in ResourceUsage.objects.filter(
        recorded_at__gte=start, recorded_at__lt=end
    ).values_list("host", "recorded_at", "disks"):
        bucket = _floor(at, HOUR)
        for mount, disk in (disks or {}).items():
            for metric, field in DISK_METRICS.items():
                if field in disk:
                    acc[(metric, mount, host, bucket)].append(float(disk[field]))
    return [
        MetricRollup(
            period=HOUR,
            bucket=bucket,
            metric=metric,
            key=mount,
            host=host,
            count=len(values),
            sum=sum(values),
            min=min(values),
            max=max(values),
        )
        for (metric, mount, host, bucket), values in acc.items()
    ]


def roll_up_days(start: datetime, end: datetime) -> int:
    """(Re)build the daily rollups of every day in [start, end) from the hourly ones."""
    start, end = _floor(start, DAY), _floor(end, DAY)
    if start >= end:
        return 0
    days = (
        MetricRollup.objects.filter(period=HOUR, bucket__gte=start, bucket__lt=end)
        .annotate(day=TruncDay("bucket", tzinfo=UTC))
        .values("metric", "key", "host", "day")
        .annotate(n=Sum("count"), s=Sum("sum"), lo=Min("min"), hi=Max("max"), obs=Sum("samples"))
        .order_by()
    )
    return _upsert([_from_aggregate(DAY, r["day"], r) for r in days])


def roll_up(now: datetime | None = None) -> dict[str, int]:
    """Catch up hourly rollups from the last one built (re-doing it, since it may have been
    built before its last minutes arrived), then daily rollups likewise."""
    now = now or timezone.now()
    raw_floor = now - timedelta(days=settings.OPS_METRICS_RAW_DAYS)
    last_hour = MetricRollup.objects.filter(period=HOUR).aggregate(m=Max("bucket"))["m"]
    start = max(last_hour, raw_floor) if last_hour else raw_floor
    hours = roll_up_hours(start, now)
    last_day = MetricRollup.objects.filter(period=DAY).aggregate(m=Max("bucket"))["m"]
    hourly_floor = now - timedelta(days=settings.OPS_METRICS_HOURLY_DAYS)
    day_start = max(last_day, hourly_floor) if last_day else hourly_floor
    days = roll_up_days(day_start, now)
    return {"hourly": hours, "daily": days}


# --- reading ranges ------------------------------------------------------------------------
class Point(NamedTuple):
    at: datetime
    avg: float
    min: float
    max: float
    rows: int


def resolution_for(start: datetime, end: datetime, now: datetime | None = None) -> str:
    """raw for up to two days within raw retention, hourly up to 90 days, daily beyond."""
    now = now or timezone.now()
    span = end - start
    if span <= timedelta(days=2) and start >= now - timedelta(days=settings.OPS_METRICS_RAW_DAYS):
        return "raw"
    if span <= timedelta(days=90):
        return HOUR
    return DAY


SeriesKey = tuple[str, str, str]  # (metric, key, host)


def series(
    wanted: Sequence[SeriesKey],
    start: datetime,
    end: datetime,
    *,
    resolution: str | None = None,
) -> dict[SeriesKey, list[Point]]:
    """Points of several series over [start, end), at the resolution the range calls for."""
    resolution = resolution or resolution_for(start, end)
    out: dict[SeriesKey, list[Point]] = {w: [] for w in wanted}
    if resolution in (HOUR, DAY):
        # IN lists use the (period, metric, key, host, bucket) index; exact pairs are
        # picked out here rather than with a long OR of ANDs.
        rows = (
            MetricRollup.objects.filter(
                period=resolution,
                metric__in={w[0] for w in wanted},
                key__in={w[1] for w in wanted},
                host__in={w[2] for w in wanted},
                bucket__gte=start,
                bucket__lt=end,
            )
            .order_by("bucket")
            .values_list("metric", "key", "host", "bucket", "count", "sum", "min", "max")
        )
        for metric, key, host, bucket, count, total, lo, hi in rows:
            points = out.get((metric, key, host))
            if points is not None:
                points.append(Point(bucket, total / count, lo, hi, count))
        return out
    perf = [w for w in wanted if w[0] not in RESOURCE_FIELDS and w[0] not in DISK_METRICS]
    if perf:
        query = Q()
        for metric, key, host in perf:
            query |= Q(metric=metric, key=key, host=host)
        rows_raw = (
            PerformanceMetric.objects.filter(query, recorded_at__gte=start, recorded_at__lt=end)
            .order_by("recorded_at")
            .values_list("metric", "key", "host", "recorded_at", "value")
        )
        for metric, key, host, at, value in rows_raw:
            out[(metric, key, host)].append(Point(at, value, value, value, 1))
    for metric, key, host in wanted:
        if metric in RESOURCE_FIELDS or metric in DISK_METRICS:
            out[(metric, key, host)] = _resource_points(metric, key, host, start, end)
    return out


Columns = dict[str, dict[str, list[float]]]  # {key: {"t": [...], "avg": [...], ...}}


def chart(
    metric: str,
    keys: Sequence[str],
    start: datetime,
    end: datetime,
    *,
    host: str = "",
    resolution: str | None = None,
) -> Columns:
    """One metric's series per key, as columns ready for a chart: {key: {"t": [epoch s],
    "avg": [...], "min": [...], "max": [...]}}. The fast path for charts: no object per point;
    on PostgreSQL the columns are built by the database (array_agg), so a 30-day chart of 20
    series moves 20 rows, not 14,400."""
    resolution = resolution or resolution_for(start, end)
    out: Columns = {k: {"t": [], "avg": [], "min": [], "max": []} for k in keys}
    query = _ChartQuery(metric, keys, start, end, host, resolution)
    if resolution == "raw":
        _raw_columns(out, query)
    elif connection.vendor == "postgresql":
        _postgres_columns(out, query)
    else:
        _portable_columns(out, query)
    return out


class _ChartQuery(NamedTuple):
    metric: str
    keys: Sequence[str]
    start: datetime
    end: datetime
    host: str
    resolution: str


def _raw_columns(out: Columns, q: _ChartQuery) -> None:
    wanted = [(q.metric, k, q.host) for k in q.keys]
    for (_m, key, _h), points in series(wanted, q.start, q.end).items():
        columns = out[key]
        for p in points:
            columns["t"].append(p.at.timestamp())
            columns["avg"].append(p.avg)
            columns["min"].append(p.min)
            columns["max"].append(p.max)


def _postgres_columns(out: Columns, q: _ChartQuery) -> None:
    table = connection.ops.quote_name(MetricRollup._meta.db_table)
    # Only the (quoted) table name is interpolated; every value is a parameter. One
    # lateral read per key walks the covering index metrics_rollup_chart (migration
    # 0003) in bucket order: no sort (sorting 14,400 rows by key under the database's
    # collation was half the time) and, once vacuumed, no heap page visited.
    series_sql = (
        f"SELECT bucket, sum, count, min, max FROM {table}"  # noqa: S608
        " WHERE period = %s AND metric = %s AND key = k.key AND host = %s"
        " AND bucket >= %s AND bucket < %s ORDER BY bucket"
    )
    sql = (
        "SELECT k.key, a.t, a.avg, a.lo, a.hi FROM unnest(%s::text[]) AS k(key)"  # noqa: S608
        " CROSS JOIN LATERAL (SELECT array_agg(extract(epoch FROM bucket)::float8) AS t,"
        " array_agg(sum / count) AS avg, array_agg(min) AS lo, array_agg(max) AS hi"
        f" FROM ({series_sql}) AS o) AS a"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(q.keys), q.resolution, q.metric, q.host, q.start, q.end])
        for key, ts, avg, lo, hi in cursor.fetchall():
            if ts is not None:  # a key without rows aggregates to NULLs
                out[key] = {"t": ts, "avg": avg, "min": lo, "max": hi}


def _portable_columns(out: Columns, q: _ChartQuery) -> None:
    rows = (
        MetricRollup.objects.filter(
            period=q.resolution,
            metric=q.metric,
            host=q.host,
            key__in=list(q.keys),
            bucket__gte=q.start,
            bucket__lt=q.end,
        )
        .order_by("key", "bucket")
        .values_list("key", "bucket", "count", "sum", "min", "max")
    )
    current: str | None = None
    col: dict[str, list[float]] = {}
    for key, bucket, count, total, lo, hi in rows:
        if key != current:
            current, col = key, out[key]
        col["t"].append(bucket.timestamp())
        col["avg"].append(total / count)
        col["min"].append(lo)
        col["max"].append(hi)


def _resource_points(
    metric: str, key: str, host: str, start: datetime, end: datetime
) -> list[Point]:
    qs = ResourceUsage.objects.filter(host=host, recorded_at__gte=start, recorded_at__lt=end)
    points = []
    if metric in RESOURCE_FIELDS:
        for at, value in qs.order_by("recorded_at").values_list("recorded_at", metric):
            if value is not None:
                points.append(Point(at, float(value), float(value), float(value), 1))
        return points
    field = DISK_METRICS[metric]
    for at, disks in qs.order_by("recorded_at").values_list("recorded_at", "disks"):
        disk = (disks or {}).get(key)
        if disk and field in disk:
            v = float(disk[field])
            points.append(Point(at, v, v, v, 1))
    return points


# --- retention -----------------------------------------------------------------------------
def cleanup(*, now: datetime | None = None) -> dict[str, int]:
    """Delete what is past retention, in batches. Returns rows deleted per model."""
    now = now or timezone.now()
    raw = now - timedelta(days=settings.OPS_METRICS_RAW_DAYS)
    hourly = now - timedelta(days=settings.OPS_METRICS_HOURLY_DAYS)
    daily = now - timedelta(days=settings.OPS_METRICS_DAILY_DAYS)
    counters_before = int(now.timestamp()) - 3 * 3600
    result = {
        "PerformanceMetric": delete_in_batches(
            PerformanceMetric.objects.filter(recorded_at__lt=raw)
        ),
        "ResourceUsage": delete_in_batches(ResourceUsage.objects.filter(recorded_at__lt=raw)),
        "SlowRequest": delete_in_batches(SlowRequest.objects.filter(created_at__lt=raw)),
        "SlowQuery": delete_in_batches(SlowQuery.objects.filter(created_at__lt=raw)),
        "MetricRollup": delete_in_batches(
            MetricRollup.objects.filter(
                Q(period=HOUR, bucket__lt=hourly) | Q(period=DAY, bucket__lt=daily)
            )
        ),
        # Minute counters are read within minutes; the all-time totals (minute 0) stay.
        "CounterValue": delete_in_batches(
            CounterValue.objects.filter(minute__gt=0, minute__lt=counters_before)
        ),
        "SeenUser": delete_in_batches(
            SeenUser.objects.filter(last_seen__lt=now.timestamp() - 86400)
        ),
    }
    return result
