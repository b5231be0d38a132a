"""Rollups equal the aggregates of the raw rows; long ranges read rollups; retention; reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from metrics.models import MetricRollup, PerformanceMetric, ResourceUsage, SlowRequest
from metrics.reports import (
    get_performance_report,
    get_resource_report,
    least_squares_slope,
)
from metrics.rollups import cleanup, resolution_for, roll_up, roll_up_days, roll_up_hours, series

pytestmark = pytest.mark.django_db

DAY0 = datetime(2026, 11, 20, tzinfo=UTC)


def _perf(at: datetime, value: float, metric: str = "response_time_p95_ms", key: str = "") -> None:
    PerformanceMetric.objects.create(recorded_at=at, metric=metric, key=key, value=value, samples=3)


def _resource(at: datetime, host: str, cpu: float, used: int, disk_used: int) -> ResourceUsage:
    return ResourceUsage.objects.create(
        recorded_at=at,
        host=host,
        cpu_percent=cpu,
        cpu_count=2,
        memory_percent=used / 8e9 * 100,
        memory_used_bytes=used,
        memory_total_bytes=8_000_000_000,
        swap_percent=0.0,
        swap_used_bytes=0,
        disks={"/": {"total": 100_000_000_000, "used": disk_used, "percent": disk_used / 1e9}},
        net_bytes_recv_total=0,
        net_bytes_sent_total=0,
        process_count=100,
        load_1=0.5,
        load_5=0.4,
        load_15=0.3,
    )


def test_hourly_and_daily_rollups_equal_the_aggregates_of_the_raw_rows() -> None:
    values = {}
    for minute in range(0, 48 * 60, 7):  # two days, an uneven step
        at = DAY0 + timedelta(minutes=minute)
        value = float((minute * 37) % 500)
        values[at] = value
        _perf(at, value)
        _perf(at, value / 2, metric="task_runtime_avg_ms", key="metrics.tasks.roll_up")
        if minute % 14 == 0:
            _resource(at, "web-1", cpu=value / 10, used=int(1e9 + minute), disk_used=int(5e9))
    roll_up_hours(DAY0, DAY0 + timedelta(days=2))
    roll_up_days(DAY0, DAY0 + timedelta(days=2))
    for hour in range(48):
        start = DAY0 + timedelta(hours=hour)
        raw = [v for at, v in values.items() if start <= at < start + timedelta(hours=1)]
        rollup = MetricRollup.objects.get(
            period="hour", bucket=start, metric="response_time_p95_ms"
        )
        assert (rollup.count, rollup.min, rollup.max) == (len(raw), min(raw), max(raw))
        assert rollup.sum == pytest.approx(sum(raw))
        assert rollup.samples == 3 * len(raw)
    for day in range(2):
        start = DAY0 + timedelta(days=day)
        raw = [v for at, v in values.items() if start <= at < start + timedelta(days=1)]
        rollup = MetricRollup.objects.get(period="day", bucket=start, metric="response_time_p95_ms")
        assert (rollup.count, rollup.min, rollup.max) == (len(raw), min(raw), max(raw))
        assert rollup.sum == pytest.approx(sum(raw))
    cpu_raw = list(
        ResourceUsage.objects.filter(recorded_at__lt=DAY0 + timedelta(days=1)).values_list(
            "cpu_percent", flat=True
        )
    )
    cpu_day = MetricRollup.objects.get(
        period="day", bucket=DAY0, metric="cpu_percent", host="web-1"
    )
    assert cpu_day.count == len(cpu_raw)
    assert cpu_day.sum == pytest.approx(sum(cpu_raw))
    disk = MetricRollup.objects.get(period="day", bucket=DAY0, metric="disk_percent", key="/")
    assert disk.min == disk.max == 5.0
    keyed = MetricRollup.objects.get(
        period="day", bucket=DAY0, metric="task_runtime_avg_ms", key="metrics.tasks.roll_up"
    )
    assert keyed.count == len([1 for at in values if at < DAY0 + timedelta(days=1)])


def test_rolling_up_again_rewrites_the_same_rows() -> None:
    for minute in range(0, 180, 5):
        _perf(DAY0 + timedelta(minutes=minute), float(minute))
    with time_machine.travel(DAY0 + timedelta(hours=3, minutes=5), tick=False):
        roll_up()
        first = sorted(MetricRollup.objects.values_list("period", "bucket", "count", "sum"))
        roll_up()
    assert sorted(MetricRollup.objects.values_list("period", "bucket", "count", "sum")) == first
    assert [r for r in first if r[0] == "hour"] == [
        ("hour", DAY0 + timedelta(hours=h), 12, float(sum(range(h * 60, h * 60 + 60, 5))))
        for h in range(3)
    ]


def test_long_ranges_read_rollups_and_short_ones_raw_rows() -> None:
    now = DAY0 + timedelta(days=40)
    assert resolution_for(now - timedelta(hours=6), now, now) == "raw"
    assert resolution_for(now - timedelta(days=30), now, now) == "hour"
    assert resolution_for(now - timedelta(days=365), now, now) == "day"
    for minute in range(0, 120):
        _perf(DAY0 + timedelta(minutes=minute), 100.0 + minute)
    roll_up_hours(DAY0, DAY0 + timedelta(hours=2))
    key = ("response_time_p95_ms", "", "")
    hourly = series([key], DAY0, DAY0 + timedelta(days=30), resolution="hour")[key]
    assert [(p.at, p.avg, p.min, p.max, p.rows) for p in hourly] == [
        (DAY0, 129.5, 100.0, 159.0, 60),
        (DAY0 + timedelta(hours=1), 189.5, 160.0, 219.0, 60),
    ]
    raw = series([key], DAY0, DAY0 + timedelta(hours=1), resolution="raw")[key]
    assert len(raw) == 60 and raw[0].avg == 100.0


def test_cleanup_keeps_7_days_raw_90_days_hourly_and_2_years_daily() -> None:
    now = DAY0 + timedelta(days=800)
    _perf(now - timedelta(days=8), 1.0)
    _perf(now - timedelta(days=6), 1.0)
    SlowRequest.objects.create(
        created_at=now - timedelta(days=8),
        route="x/",
        method="GET",
        status=200,
        duration_ms=1500,
        query_count=1,
        query_ms=1,
    )
    for period, age in (("hour", 91), ("hour", 89), ("day", 731), ("day", 729)):
        MetricRollup.objects.create(
            period=period,
            bucket=now - timedelta(days=age),
            metric="cpu_percent",
            host="h",
            count=1,
            sum=1,
            min=1,
            max=1,
        )
    deleted = cleanup(now=now)
    assert deleted["PerformanceMetric"] == 1
    assert deleted["SlowRequest"] == 1
    assert deleted["MetricRollup"] == 2
    assert PerformanceMetric.objects.count() == 1
    assert sorted(MetricRollup.objects.values_list("period", flat=True)) == ["day", "hour"]


def test_least_squares_slope_fits_the_line() -> None:
    assert least_squares_slope([(0, 1), (1, 3), (2, 5)]) == pytest.approx(2.0)
    assert least_squares_slope([(0, 1)]) is None
    assert least_squares_slope([(1, 1), (1, 2)]) is None


def test_the_performance_report_gives_averages_peaks_and_trends() -> None:
    now = DAY0 + timedelta(hours=2)
    for minute in range(120):
        _perf(DAY0 + timedelta(minutes=minute), 100.0 + minute)  # rising by 60 ms per hour
    with time_machine.travel(now, tick=False):
        report = get_performance_report(2)
    p95 = report["metrics"]["response_time_p95_ms"]
    assert p95["avg"] == pytest.approx(159.5)
    assert p95["max"] == 219.0 and p95["min"] == 100.0
    assert p95["trend"]["slope_per_hour"] == pytest.approx(60.0)
    assert p95["trend"]["direction"] == "increasing"
    # The seed's trend: second half's average (189.5) against the first half's (129.5).
    assert p95["trend"]["change_percent"] == pytest.approx((189.5 - 129.5) / 129.5 * 100)
    # Nothing measured, nothing reported.
    assert "error_rate_percent" not in report["metrics"]


def test_the_resource_report_forecasts_when_disk_and_memory_run_out() -> None:
    now = DAY0 + timedelta(days=3)
    for hour in range(0, 72):
        at = DAY0 + timedelta(hours=hour)
        # Disk grows 1 GB a day out of 100 GB; memory grows 100 MB a day out of 8 GB.
        _resource(
            at,
            "db-1",
            cpu=20.0,
            used=int(2e9 + hour * 1e8 / 24),
            disk_used=int(50e9 + hour * 1e9 / 24),
        )
    roll_up_hours(DAY0, now)
    with time_machine.travel(now, tick=False):
        report = get_resource_report(72)
    host = report["hosts"]["db-1"]
    assert host["metrics"]["cpu_percent"]["avg"] == pytest.approx(20.0)
    last_disk = 50e9 + 71 * 1e9 / 24
    assert host["forecast"]["disk_days_until_full"]["/"] == pytest.approx(
        (100e9 - last_disk) / 1e9, rel=1e-3
    )
    last_mem = 2e9 + 71 * 1e8 / 24
    assert host["forecast"]["memory_days_until_exhausted"] == pytest.approx(
        (8e9 - last_mem) / 1e8, rel=1e-3
    )


def test_a_flat_disk_has_no_forecast() -> None:
    for hour in range(10):
        _resource(DAY0 + timedelta(hours=hour), "db-1", cpu=5, used=int(1e9), disk_used=int(1e9))
    with time_machine.travel(DAY0 + timedelta(hours=10), tick=False):
        report = get_resource_report(10)
    assert report["hosts"]["db-1"]["forecast"]["disk_days_until_full"]["/"] is None


def test_reports_refuse_a_nonsense_window() -> None:
    for bad in (0, -5, 10**9):
        with pytest.raises(ValueError, match="hours must be"):
            get_performance_report(bad)


def test_a_chart_reads_columns_per_key_from_the_rollups() -> None:
    for minute in range(120):
        _perf(DAY0 + timedelta(minutes=minute), 1.0 + minute, metric="route_requests", key="a/")
        _perf(DAY0 + timedelta(minutes=minute), 2.0, metric="route_requests", key="b/")
    roll_up_hours(DAY0, DAY0 + timedelta(hours=2))
    from metrics.rollups import chart

    data = chart("route_requests", ["a/", "b/", "c/"], DAY0, DAY0 + timedelta(days=30))
    assert data["a/"]["t"] == [DAY0.timestamp(), (DAY0 + timedelta(hours=1)).timestamp()]
    assert data["a/"]["avg"] == [30.5, 90.5]
    assert data["a/"]["max"] == [60.0, 120.0]
    assert data["b/"]["min"] == [2.0, 2.0]
    assert data["c/"] == {"t": [], "avg": [], "min": [], "max": []}


def test_charts_over_rollups_read_a_covering_index_on_postgresql() -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("covering indexes are PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'metrics_rollup_chart'")
        (definition,) = cursor.fetchone()
    assert "(period, metric, key, host, bucket)" in definition
    assert "INCLUDE (count, sum, min, max)" in definition
