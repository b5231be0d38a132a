"""Request metrics: real requests, recorded per route pattern with their real query counts."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from metrics.histogram import SLOTS
from metrics.models import SlowQuery, SlowRequest
from metrics.recorder import SEP, recorder, request_field
from metrics.store import get_store

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("metrics_prefix", "metrics_urls")]


def _totals() -> dict[str, float]:
    assert recorder.flush()
    return get_store().totals()


def test_it_records_a_real_request_under_its_route_pattern_with_its_query_count() -> None:
    client = Client()
    for pk in (1, 2, 3):
        assert client.get(f"/items/{pk}/", {"sleep": "0.02"}).status_code == 200
    totals = _totals()
    route = "items/<int:pk>/"
    assert totals[request_field(route, "GET", "2xx", "n")] == 3
    # The view runs exactly three queries per request, counted by the execute wrapper.
    assert totals[request_field(route, "GET", "2xx", "qn")] == 9
    assert totals[request_field(route, "GET", "2xx", "qs")] > 0
    duration = totals[request_field(route, "GET", "2xx", "s")]
    assert 0.06 <= duration < 3.0  # three requests that each slept 20 ms
    buckets = [totals.get(request_field(route, "GET", "2xx", f"b{i}"), 0) for i in range(SLOTS)]
    assert sum(buckets) == 3
    # The raw paths never become labels.
    assert not any("/items/1/" in name for name in totals)


def test_it_labels_unresolved_paths_and_status_classes() -> None:
    client = Client(raise_request_exception=False)
    client.get("/no/such/page/")
    client.get("/boom/")
    client.post("/items/7/")
    client.get("/crash/")
    totals = _totals()
    assert totals[request_field("<unmatched>", "GET", "4xx", "n")] == 1
    assert totals[request_field("boom/", "GET", "5xx", "n")] == 1
    assert totals[request_field("items/<int:pk>/", "POST", "2xx", "n")] == 1
    assert totals[request_field("crash/", "GET", "5xx", "n")] == 1


def test_it_keeps_slow_requests_and_slow_queries_individually(settings: Any) -> None:
    settings.OPS_METRICS_SLOW_REQUEST_MS = 30
    settings.OPS_METRICS_SLOW_QUERY_MS = 40
    client = Client()  # built after the settings change: the middleware reads them at start
    client.get("/items/5/", {"sleep": "0.05"}, HTTP_X_REQUEST_ID="req-slow-12345")
    client.get("/slow-query/")
    client.get("/items/6/", HTTP_X_REQUEST_ID="req-fast-12345")
    assert recorder.flush()
    from metrics.collectors import drain_slow

    drain_slow(get_store())
    slow = SlowRequest.objects.get(request_id="req-slow-12345")
    assert slow.route == "items/<int:pk>/"
    assert slow.method == "GET"
    assert slow.status == 200
    assert slow.duration_ms >= 50
    assert slow.query_count == 3
    # The fast one is not kept (unless this machine took 30 ms over three tiny queries).
    fast = SlowRequest.objects.filter(request_id="req-fast-12345").first()
    assert fast is None or fast.duration_ms >= 30
    query = SlowQuery.objects.get(route="slow-query/")
    assert query.route == "slow-query/"
    assert query.duration_ms >= 40
    # The statement is kept, never parameter values.
    assert "SELECT" in query.sql.upper()


def test_it_counts_distinct_signed_in_users(admin: Any, operator: Any) -> None:
    import time

    for user in (admin, operator, admin):
        client = Client()
        client.force_login(user)
        assert client.get("/whoami/").status_code == 200
    Client().get("/whoami/")  # anonymous: not counted
    assert recorder.flush()
    assert get_store().active_users(time.time() - 300) == 2


def test_it_keeps_figures_buffered_while_the_store_is_unreachable(settings: Any) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    Client().get("/items/1/")
    assert recorder.flush() is False
    pending = recorder.pending()
    field = request_field("items/<int:pk>/", "GET", "2xx", "n")
    assert sum(f.get(field, 0) for f in pending.values()) == 1


def test_health_probes_are_answered_before_the_metrics_middleware() -> None:
    Client().get("/health/live")
    assert recorder.flush()
    assert not any(name.startswith(f"req{SEP}health") for name in get_store().totals())


def test_the_middleware_adds_no_query_to_a_signed_in_request(
    admin: Any, django_assert_num_queries: Any
) -> None:
    from maintenance import state

    client = Client()
    client.force_login(admin)
    # The maintenance middleware reads its state at most once a second per process: read it
    # now, so the request below is measured alone.
    state.current(fresh=True)
    with django_assert_num_queries(3):  # the view's own three; the user is never loaded for us
        assert client.get("/items/1/").status_code == 200


def test_shutting_down_joins_the_flush_thread_and_flushes_what_is_left(settings: Any) -> None:
    # A daemon flush thread left running at interpreter exit can die holding the Redis pool's
    # lock, and the process then never exits; shutdown (atexit, Celery's child exit) joins it.
    settings.OPS_METRICS_FLUSH_INTERVAL = 30  # it would not flush on its own during this test
    recorder._pid = 0  # as in a freshly forked worker: the next record starts the thread
    recorder.record_request("items/<int:pk>/", "GET", 200, 0.01, 0, 0.0, [])
    thread = recorder._thread
    assert thread is not None and thread.is_alive()
    assert recorder.shutdown(timeout=5)
    assert not thread.is_alive()
    assert get_store().totals()[request_field("items/<int:pk>/", "GET", "2xx", "n")] == 1


def test_made_up_http_methods_are_counted_as_other_and_add_no_series() -> None:
    """Any token is a valid method on the wire; each distinct one used to become a label value
    (a new series in /metrics and a new field in every minute's hash)."""
    from prometheus_client.parser import text_string_to_metric_families

    client = Client(raise_request_exception=False)
    assert client.generic("FOOBAR", "/items/1/").status_code == 200
    for n in range(10_000):
        client.generic(f"M{n:05d}", "/boom/")
    client.get("/boom/")
    totals = _totals()
    assert totals[request_field("items/<int:pk>/", "other", "2xx", "n")] == 1
    assert totals[request_field("boom/", "other", "5xx", "n")] == 10_000
    assert totals[request_field("boom/", "GET", "5xx", "n")] == 1
    assert {name.split(SEP)[2] for name in totals if name.startswith(f"req{SEP}")} == {
        "other",
        "GET",
    }
    response = client.get("/metrics")
    assert response.status_code == 200
    body = response.content.decode()
    assert "FOOBAR" not in body and 'method="M0' not in body
    series = {
        (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(body)
        if family.name == "http_requests"
        for s in family.samples
    }
    assert series == {
        ("items/<int:pk>/", "other", "2xx"): 1,
        ("boom/", "other", "5xx"): 10_000,
        ("boom/", "GET", "5xx"): 1,
    }
