"""GET /metrics: prometheus-client's own parser reads it, counts are right, token, isolation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client, override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from health.models import ComponentState, WorkerHeartbeat
from metrics.collectors import collect_resource_usage
from metrics.recorder import recorder

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("metrics_prefix")]


def scrape(client: Client | None = None, **headers: Any) -> dict[str, list[Any]]:
    response = (client or Client()).get("/metrics", **headers)
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    families: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        families[family.name] = family.samples
    return families


def value(samples: list[Any], name: str, **labels: str) -> float:
    matches = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
    assert len(matches) == 1, (name, labels, matches)
    return float(matches[0])


@pytest.mark.usefixtures("metrics_urls")
def test_it_exposes_request_counts_and_the_duration_histogram_by_route() -> None:
    client = Client()
    for pk in range(5):
        client.get(f"/items/{pk}/")
    client.get("/boom/")
    assert recorder.flush()
    families = scrape(client)
    samples = families["http_requests"]
    labels = {"route": "items/<int:pk>/", "method": "GET", "status": "2xx"}
    assert value(samples, "http_requests_total", **labels) == 5
    assert value(samples, "http_requests_total", route="boom/", status="5xx") == 1
    hist = families["http_request_duration_seconds"]
    assert value(hist, "http_request_duration_seconds_count", **labels) == 5
    assert value(hist, "http_request_duration_seconds_bucket", le="+Inf", **labels) == 5
    assert value(hist, "http_request_duration_seconds_sum", **labels) > 0
    queries = families["http_request_db_queries"]
    assert value(queries, "http_request_db_queries_total", **labels) == 15


def test_it_exposes_host_gauges_health_and_workers_online() -> None:
    collect_resource_usage()
    ComponentState.objects.create(component="database", status="pass")
    ComponentState.objects.create(component="queue", status="fail")
    WorkerHeartbeat.objects.create(hostname="celery@a", last_seen=timezone.now())
    WorkerHeartbeat.objects.create(
        hostname="celery@gone", last_seen=timezone.now() - timedelta(hours=1)
    )
    families = scrape()
    import socket

    host = socket.gethostname()
    assert 0 <= value(families["host_cpu_usage_ratio"], "host_cpu_usage_ratio", host=host) <= 1
    assert value(families["host_memory_total_bytes"], "host_memory_total_bytes", host=host) > 0
    assert value(families["host_disk_used_bytes"], "host_disk_used_bytes", host=host, mount="/") > 0
    health = families["health_component_status"]
    assert value(health, "health_component_status", component="queue", status="fail") == 1
    assert value(health, "health_component_status", component="queue", status="pass") == 0
    assert value(health, "health_component_status", component="database", status="pass") == 1
    assert value(families["celery_workers_online"], "celery_workers_online") == 1
    errors = families["ops_metrics_collector_errors"]
    assert all(s.value == 0 for s in errors)


def test_it_includes_every_installed_apps_collector_and_survives_a_failing_one(
    settings: Any,
) -> None:
    settings.INSTALLED_APPS = [
        *settings.INSTALLED_APPS,
        "tests.metrics_prom_app",
        "tests.metrics_broken_app",
    ]
    families = scrape()
    assert (
        value(families["backup_last_success_age_seconds"], "backup_last_success_age_seconds") == 42
    )
    errors = families["ops_metrics_collector_errors"]
    assert value(errors, "ops_metrics_collector_errors", collector="app:metrics_broken_app") == 1
    assert value(errors, "ops_metrics_collector_errors", collector="app:metrics_prom_app") == 0


@override_settings(OPS_METRICS_TOKEN="s3cret-token-for-the-scraper")
def test_a_configured_token_is_required(operator: Any, outsider: Any) -> None:
    response = Client().get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Basic s3cret").status_code == 401
    scrape(HTTP_AUTHORIZATION="Bearer s3cret-token-for-the-scraper")
    staff = Client()
    staff.force_login(operator)
    scrape(staff)
    other = Client()
    other.force_login(outsider)
    assert other.get("/metrics").status_code == 401


def test_it_refuses_other_methods() -> None:
    response = Client().post("/metrics")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


def test_task_figures_appear_as_histograms_per_task_name() -> None:
    recorder.record_task(name="backups.tasks.create_backup", state="SUCCESS", runtime=1.2, wait=0.3)
    recorder.record_task(
        name="backups.tasks.create_backup", state="FAILURE", runtime=0.2, wait=None
    )
    assert recorder.flush()
    families = scrape()
    runtime = families["celery_task_runtime_seconds"]
    task = "backups.tasks.create_backup"
    assert value(runtime, "celery_task_runtime_seconds_count", task=task) == 2
    assert value(runtime, "celery_task_runtime_seconds_sum", task=task) == pytest.approx(1.4)
    wait = families["celery_task_wait_seconds"]
    assert value(wait, "celery_task_wait_seconds_count", task=task) == 1
    done = families["celery_tasks"]
    assert value(done, "celery_tasks_total", task=task, state="FAILURE") == 1


def test_no_host_series_is_shown_before_a_host_was_sampled() -> None:
    families = scrape()
    assert families["host_cpu_usage_ratio"] == []
    assert "cache_hit_ratio" not in families


@override_settings(PRODUCTION=True, OPS_METRICS_TOKEN="", OPS_METRICS_PUBLIC=False)
def test_production_without_a_token_refuses_anonymous_scrapes(operator: Any) -> None:
    response = Client().get("/metrics")
    assert response.status_code == 401
    assert b"OPS_METRICS_TOKEN" in response.content
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401
    staff = Client()
    staff.force_login(operator)
    scrape(staff)


@override_settings(PRODUCTION=True, OPS_METRICS_TOKEN="", OPS_METRICS_PUBLIC=True)
def test_production_serves_anonymous_scrapes_only_when_opened_on_purpose() -> None:
    scrape()
