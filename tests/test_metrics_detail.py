"""The metrics detail pages: per-route and per-task tables, slow queries grouped by statement,
and the reports with their forecasts in words, against seeded rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from metrics.collectors import drain_slow, summarize_minute
from metrics.figures import days_in_words, route_table, slow_query_groups
from metrics.models import MetricRollup, PerformanceMetric, ResourceUsage, SlowRequest
from metrics.recorder import SEP, request_field
from metrics.sqlshape import normalize_sql

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _perf(at: datetime, metric: str, key: str, value: float, samples: int) -> None:
    PerformanceMetric.objects.create(
        recorded_at=at, metric=metric, key=key, value=value, samples=samples
    )


def _route_minute(at: datetime, route: str, n: int, p95: float, errors: float, qpr: float) -> None:
    _perf(at, "route_requests", route, n, n)
    _perf(at, "route_response_time_p50_ms", route, p95 / 2, n)
    _perf(at, "route_response_time_p95_ms", route, p95, n)
    _perf(at, "route_response_time_p99_ms", route, p95 * 2, n)
    _perf(at, "route_errors", route, errors, n)
    _perf(at, "route_queries_per_request", route, qpr, n)
    _perf(at, "route_query_time_avg_ms", route, qpr * 1.5, n)


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_it_weights_each_minutes_route_figures_by_its_requests() -> None:
    _route_minute(NOW - timedelta(minutes=2), "items/", n=30, p95=100.0, errors=3, qpr=2.0)
    _route_minute(NOW - timedelta(minutes=1), "items/", n=10, p95=300.0, errors=0, qpr=6.0)
    _route_minute(NOW - timedelta(minutes=1), "health/", n=60, p95=5.0, errors=0, qpr=0.0)
    # Outside the hour: not counted.
    _route_minute(NOW - timedelta(hours=2), "items/", n=999, p95=9999.0, errors=999, qpr=99.0)
    rows = {r["route"]: r for r in route_table(NOW - timedelta(hours=1), NOW, "route")}
    items = rows["items/"]
    assert items["requests"] == 40
    assert items["rpm"] == pytest.approx(40 / 60)
    assert items["p95"] == pytest.approx((30 * 100 + 10 * 300) / 40)
    assert items["p50"] == pytest.approx((30 * 50 + 10 * 150) / 40)
    assert items["p99"] == pytest.approx((30 * 200 + 10 * 600) / 40)
    assert items["error_rate"] == pytest.approx(3 / 40 * 100)
    assert items["queries"] == pytest.approx((30 * 2 + 10 * 6) / 40)
    assert items["query_ms"] == pytest.approx((30 * 3 + 10 * 9) / 40)
    assert rows["health/"]["error_rate"] == 0


def test_it_reads_long_periods_from_the_hourly_rollups() -> None:
    bucket = NOW - timedelta(days=3)
    for metric, total, count, samples in (
        ("route_requests", 600.0, 60, 600),
        ("route_response_time_p95_ms", 6000.0, 60, 600),  # hourly mean 100 ms
        ("route_errors", 6.0, 60, 600),
    ):
        MetricRollup.objects.create(
            period="hour", bucket=bucket, metric=metric, key="a/", host="", count=count,
            sum=total, min=0, max=total, samples=samples,
        )  # fmt: skip
    (row,) = route_table(NOW - timedelta(days=7), NOW)
    assert row["requests"] == 600
    assert row["rpm"] == pytest.approx(600 / (7 * 24 * 60))
    assert row["p95"] == pytest.approx(100.0)
    assert row["error_rate"] == pytest.approx(1.0)
    assert row["p50"] is None  # not stored for that hour: shown as "—", never invented


def test_it_reads_rolled_up_hours_from_rollups_and_the_rest_from_minute_rows() -> None:
    rolled = datetime(2026, 11, 30, 6, tzinfo=UTC)
    MetricRollup.objects.create(
        period="hour", bucket=rolled, metric="route_requests", key="a/", host="", count=60,
        sum=600.0, min=10, max=10, samples=600,
    )  # fmt: skip
    # The minute rows the rollup was built from are still there: not counted twice.
    _perf(rolled + timedelta(minutes=5), "route_requests", "a/", 10, 10)
    # Minutes after the newest rolled hour come from the minute rows.
    _perf(NOW - timedelta(minutes=10), "route_requests", "a/", 30, 30)
    (row,) = route_table(NOW - timedelta(hours=24), NOW)
    assert row["requests"] == 630


def test_the_collector_stores_per_route_percentiles_errors_and_query_time() -> None:
    fields = {
        request_field("a/", "GET", "2xx", "n"): 3.0,
        request_field("a/", "GET", "5xx", "n"): 1.0,
        request_field("a/", "GET", "2xx", "s"): 0.4,
        request_field("a/", "GET", "2xx", "qn"): 8.0,
        request_field("a/", "GET", "2xx", "qs"): 0.02,
        request_field("a/", "GET", "2xx", "b3"): 4.0,
    }
    rows = {(m, k): (v, n) for m, k, v, n in summarize_minute(fields)}
    assert rows[("route_errors", "a/")] == (1.0, 4)
    assert rows[("route_query_time_avg_ms", "a/")][0] == pytest.approx(5.0)
    assert ("route_response_time_p50_ms", "a/") in rows
    assert ("route_response_time_p99_ms", "a/") in rows
    assert SEP not in "".join(k for _, k in rows)


def test_the_routes_table_sorts_by_any_column_and_refuses_unknown_ones(operator: Any) -> None:
    now = timezone.now().replace(second=0, microsecond=0)
    _route_minute(now - timedelta(minutes=1), "slow/", n=2, p95=900.0, errors=0, qpr=1.0)
    _route_minute(now - timedelta(minutes=1), "busy/", n=50, p95=20.0, errors=1, qpr=1.0)
    client = _client(operator)
    by_p95 = client.get("/console/metrics/routes/", {"sort": "-p95", "period": "1h"})
    body = by_p95.content.decode()
    assert by_p95.status_code == 200
    assert body.index("<code>slow/</code>") < body.index("<code>busy/</code>")
    by_rpm = client.get("/console/metrics/routes/", {"sort": "-rpm", "period": "1h"})
    body = by_rpm.content.decode()
    assert body.index("<code>busy/</code>") < body.index("<code>slow/</code>")
    refused = client.get("/console/metrics/routes/", {"sort": "password"})
    assert refused.status_code == 400
    assert b"sort must be one of" in refused.content


@pytest.mark.parametrize(
    "path", ["routes/", "slow/", "tasks/", "reports/"], ids=lambda p: p.strip("/")
)
def test_each_page_refuses_a_bad_period_and_outsiders(
    path: str, operator: Any, outsider: Any
) -> None:
    url = f"/console/metrics/{path}"
    refused = _client(operator).get(url, {"period": "2w"})
    assert refused.status_code == 400
    assert b"period must be one of 1h, 6h, 24h, 7d, 30d" in refused.content
    assert _client(operator).get(url, {"period": "30d"}).status_code == 200
    assert _client(outsider).get(url).status_code == 403
    assert Client().get(url).status_code == 302


def test_it_normalises_sql_in_one_pass() -> None:
    assert (
        normalize_sql('SELECT "t"."id" FROM "t" WHERE id IN (1, 2, 3) AND n = \'it\'\'s\'')
        == 'SELECT "t"."id" FROM "t" WHERE id IN (?, ...) AND n = ?'
    )
    assert normalize_sql("select  *\n from t2 where a=$1 -- why\n and b = %s") == (
        "select * from t2 where a=? and b = ?"
    )
    # Hostile input stays linear: an unterminated literal of 200k quotes, 100k list items.
    assert normalize_sql("SELECT '" + "'" * 200_001) == "SELECT ?"
    assert normalize_sql("SELECT " + ", ".join(["1"] * 100_000)) == "SELECT ?, ..."


def test_it_groups_slow_queries_by_their_statement(operator: Any) -> None:
    statements = [f"SELECT * FROM t WHERE id = {i}" for i in range(5)]  # noqa: S608
    durations = (100.0, 200.0, 300.0, 400.0, 1000.0)

    class Store:
        def pop_slow(self, limit: int) -> list[dict[str, Any]]:
            at = timezone.now().timestamp()
            items = [
                {"kind": "query", "at": at, "sql": sql, "duration_ms": ms, "route": "a/"}
                for sql, ms in zip(statements, durations, strict=True)
            ]
            items.append(
                {"kind": "query", "at": at, "sql": "UPDATE u SET x = 1", "duration_ms": 150.0}
            )
            return items

    assert drain_slow(Store()) == 6
    end = timezone.now() + timedelta(seconds=1)
    groups = {g["shape"]: g for g in slow_query_groups(end - timedelta(hours=1), end)}
    select = groups["SELECT * FROM t WHERE id = ?"]
    assert select["count"] == 5
    assert select["total_ms"] == pytest.approx(2000.0)
    # Linear interpolation, like PostgreSQL's percentile_cont: 400 + 0.8 * 600.
    assert select["p95_ms"] == pytest.approx(880.0)
    assert select["example"] == "SELECT * FROM t WHERE id = 4"
    assert groups["UPDATE u SET x = ?"]["count"] == 1
    page = _client(operator).get("/console/metrics/slow/", {"period": "1h"}).content.decode()
    assert page.index("SELECT * FROM t WHERE id = ?") < page.index("UPDATE u SET x = ?")


def test_the_slow_page_lists_the_slowest_requests(operator: Any) -> None:
    for ms in (500.0, 2500.0):
        SlowRequest.objects.create(
            route="r/", method="GET", status=200, duration_ms=ms, query_count=3, query_ms=10.0
        )
    body = _client(operator).get("/console/metrics/slow/").content.decode()
    assert "2 slow requests in this period" in body
    assert body.index(">2500<") < body.index(">500<")


def test_it_states_forecasts_in_words() -> None:
    assert days_in_words(12.4, "full", 30) == "full in about 12 days"
    assert days_in_words(None, "full", 30) == "no growth"
    assert days_in_words(0.0, "full", 30) == "full now"
    assert days_in_words(0.2, "full", 30) == "full within a day"
    assert days_in_words(3.0, "full", 1) == "not enough samples to forecast"


def _sample(at: datetime, used: int, memory_used: int) -> None:
    ResourceUsage.objects.create(
        recorded_at=at, host="web-1", cpu_percent=10, cpu_count=2, memory_percent=50,
        memory_used_bytes=memory_used, memory_total_bytes=1000, swap_percent=0,
        swap_used_bytes=0, disks={"/": {"total": 1000, "used": used, "percent": used / 10}},
        net_bytes_recv_total=0, net_bytes_sent_total=0, process_count=10,
        load_1=0.1, load_5=0.1, load_15=0.1,
    )  # fmt: skip


def test_the_reports_page_shows_the_capacity_forecast_in_words(operator: Any) -> None:
    now = timezone.now().replace(second=0, microsecond=0)
    # Disk: 10 bytes more every hour, 500 of 1000 used now: full in 50 h, about 2 days.
    for hour in range(6):
        _sample(now - timedelta(hours=5 - hour), used=450 + 10 * hour, memory_used=400)
    _perf(now - timedelta(minutes=5), "response_time_p95_ms", "", 120.0, 10)
    body = _client(operator).get("/console/metrics/reports/", {"period": "24h"}).content.decode()
    assert "disk /: full in about 2 days" in body
    assert "memory: no growth" in body
    assert "response_time_p95_ms" in body
    assert "120.00" in body
