"""The performance collector: percentiles, rates, cache hit rate, queue depth, active users."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from metrics.collectors import (
    SETTLE_SECONDS,
    cache_hit_rate,
    collect_performance_metrics,
    queue_depths,
)
from metrics.models import PerformanceMetric
from metrics.recorder import recorder
from metrics.store import get_store

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("metrics_prefix")]
# ruff: noqa: F811

MINUTE = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def _values(at: datetime) -> dict[tuple[str, str], float]:
    return {
        (m, k): v
        for m, k, v in PerformanceMetric.objects.filter(recorded_at=at).values_list(
            "metric", "key", "value"
        )
    }


def _record(duration: float, status: int = 200, route: str = "items/<int:pk>/", **kw: Any) -> None:
    recorder.record_request(
        route=route,
        method="GET",
        status=status,
        duration=duration,
        query_count=kw.get("queries", 0),
        query_time=kw.get("query_time", 0.0),
        query_durations=kw.get("query_durations", []),
        now=MINUTE.timestamp() + 10,
    )


def test_it_turns_a_minute_of_requests_into_percentiles_rates_and_an_error_rate() -> None:
    for _ in range(90):
        _record(0.03, queries=2, query_time=0.004, query_durations=[0.001, 0.003])
    for _ in range(8):
        _record(0.45)
    for _ in range(2):
        _record(2.2, status=502, route="boom/")
    assert recorder.flush()
    result = collect_performance_metrics(now=MINUTE + timedelta(seconds=60 + SETTLE_SECONDS + 1))
    assert result["rows"] > 0
    values = _values(MINUTE)
    assert values[("request_rate_per_s", "")] == pytest.approx(100 / 60)
    assert values[("error_rate_percent", "")] == pytest.approx(2.0)
    expected_avg = (90 * 0.03 + 8 * 0.45 + 2 * 2.2) / 100 * 1000
    assert values[("response_time_avg_ms", "")] == pytest.approx(expected_avg)
    # Percentiles are read from the histogram: inside the bucket holding the rank.
    assert 25 < values[("response_time_p50_ms", "")] <= 50
    assert 400 < values[("response_time_p95_ms", "")] <= 500
    assert 2000 < values[("response_time_p99_ms", "")] <= 2500
    assert values[("route_requests", "boom/")] == 2
    assert values[("route_queries_per_request", "items/<int:pk>/")] == pytest.approx(180 / 98)
    assert values[("db_query_time_avg_ms", "")] == pytest.approx(2.0)
    assert 2.5 < values[("db_query_time_p95_ms", "")] <= 5.0


def test_running_the_collector_twice_writes_the_same_rows() -> None:
    for _ in range(5):
        _record(0.02)
    assert recorder.flush()
    now = MINUTE + timedelta(seconds=60 + SETTLE_SECONDS + 1)
    collect_performance_metrics(now=now)
    rows = PerformanceMetric.objects.filter(recorded_at=MINUTE)
    first = sorted(rows.values_list("metric", "key", "value", "samples"))
    collect_performance_metrics(now=now)
    again = sorted(rows.values_list("metric", "key", "value", "samples"))
    assert first == again


def test_it_writes_no_request_figures_for_a_minute_without_requests() -> None:
    collect_performance_metrics(now=MINUTE + timedelta(seconds=60 + SETTLE_SECONDS + 1))
    metrics = set(PerformanceMetric.objects.values_list("metric", flat=True))
    assert not {m for m in metrics if m.startswith(("response_", "request_", "error_", "db_"))}


def test_active_users_are_those_seen_within_the_window() -> None:
    now = time.time()
    get_store().seen_users({1: now - 30, 2: now - 200, 3: now - 301, 4: now - 7200})
    assert get_store().active_users(now - 300) == 2


def test_real_cache_hits_and_misses_on_redis_move_the_hit_rate(private_redis: str) -> None:
    import redis

    client = redis.Redis.from_url(private_redis)
    client.set("present", "1")
    assert cache_hit_rate(private_redis) is None  # the first reading is only a baseline
    for _ in range(30):
        assert client.get("present") == b"1"
    for i in range(10):
        assert client.get(f"absent-{i}") is None
    rate = cache_hit_rate(private_redis)
    assert rate == (75.0, 40)
    for i in range(20):
        client.get(f"absent-again-{i}")
    assert cache_hit_rate(private_redis) == (0.0, 20)
    assert cache_hit_rate(private_redis) is None  # no lookups since: nothing to report


def test_a_django_cache_on_redis_moves_the_hit_rate(private_redis: str, settings: Any) -> None:
    from django.core.cache.backends.redis import RedisCache

    cache = RedisCache(private_redis, {})
    cache.set("k", "v")
    cache_hit_rate(private_redis)
    for _ in range(9):
        assert cache.get("k") == "v"
    assert cache.get("missing") is None
    assert cache_hit_rate(private_redis) == (90.0, 10)


@pytest.mark.redis
def test_it_reads_queue_depth_from_the_redis_broker_with_priority_lists(
    redis_url: str, settings: Any, metrics_prefix: str, monkeypatch: Any
) -> None:
    from celery import current_app

    from metrics.store import redis_client

    queue = f"{metrics_prefix}-queue"
    monkeypatch.setitem(current_app.conf, "broker_url", redis_url)
    settings.OPS_METRICS_QUEUES = [queue, f"{queue}-empty"]
    client = redis_client(redis_url)
    try:
        client.lpush(queue, "a", "b", "c")
        client.lpush(f"{queue}\x06\x166", "d", "e")
        assert queue_depths() == {queue: 5, f"{queue}-empty": 0}
    finally:
        client.delete(queue, f"{queue}\x06\x166")


def test_it_reads_queue_depth_from_the_filesystem_broker(
    tmp_path: Any, settings: Any, monkeypatch: Any
) -> None:
    from celery import current_app
    from kombu import Connection

    folder = tmp_path / "queue"
    folder.mkdir()
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "control_folder": str(tmp_path / "control"),  # not ./control of the checkout
    }
    monkeypatch.setitem(current_app.conf, "broker_url", "filesystem://")
    monkeypatch.setitem(current_app.conf, "broker_transport_options", options)
    settings.OPS_METRICS_QUEUES = ["jobs", "other"]
    with Connection("filesystem://", transport_options=options) as conn:
        q = conn.SimpleQueue("jobs")
        for i in range(4):
            q.put({"n": i})
        q.close()
    assert queue_depths() == {"jobs": 4, "other": 0}


def test_the_database_store_adds_up_and_forgets_summarized_minutes() -> None:
    from metrics.models import CounterValue
    from metrics.store import DatabaseStore

    store = DatabaseStore()
    store.add({600: {"a": 1.0}, 660: {"a": 2.0}})
    store.add({660: {"a": 0.5, "b": 1.0}})
    assert store.totals() == {"a": 3.5, "b": 1.0}
    assert store.minute(660) == {"a": 2.5, "b": 1.0}
    store.forget_minutes_before(660)
    assert set(CounterValue.objects.values_list("minute", flat=True)) == {0, 660}
