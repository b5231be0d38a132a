"""The console's home: status and uptime, cards equal to what the database holds, the period
selector, a bounded number of queries."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from alerts.models import Alert
from backups.models import Backup
from errors.models import ErrorProject, Issue
from health import uptime
from health.models import ComponentResult, ComponentState, HealthCheck, WorkerHeartbeat
from maintenance.models import MaintenanceWindow
from metrics.models import PerformanceMetric, ResourceUsage
from opsconsole.periods import PERIODS

pytestmark = pytest.mark.django_db


def run_at(at: datetime, status: str, components: dict[str, str] | None = None) -> HealthCheck:
    run = HealthCheck.objects.create(
        created_at=at,
        status=status,
        duration_ms=5,
        details={"queue": {"observations": [
            {"measurement": "depth", "observedValue": 7, "observedUnit": "messages"},
            {"measurement": "oldestWait", "observedValue": 42.5, "observedUnit": "s"},
        ]}},
    )  # fmt: skip
    for component, state in (components or {"database": status}).items():
        ComponentResult.objects.create(
            run=run, created_at=at, component=component, status=state, duration_ms=1
        )
    return run


def sample(host: str, at: datetime, cpu: float = 12.0) -> ResourceUsage:
    return ResourceUsage.objects.create(
        recorded_at=at, host=host, cpu_percent=cpu, cpu_count=2, memory_percent=40.0,
        memory_used_bytes=1, memory_total_bytes=2, swap_percent=0, swap_used_bytes=0,
        disks={"/": {"total": 100, "used": 63, "percent": 63.0}}, net_bytes_recv_total=0,
        net_bytes_sent_total=0, process_count=10, load_1=0.5, load_5=0.4, load_15=0.3,
    )  # fmt: skip


def minute(metric: str, at: datetime, value: float, samples: int = 0) -> None:
    PerformanceMetric.objects.create(recorded_at=at, metric=metric, value=value, samples=samples)


def issue(project: ErrorProject, name: str, **fields: Any) -> Issue:
    now = timezone.now()
    defaults = {"first_seen": now, "last_seen": now, "created_at": now}
    return Issue.objects.create(
        project=project, fingerprint=name, title=name, **{**defaults, **fields}
    )


def seed(now: datetime) -> None:
    for i in range(10):
        run_at(now - timedelta(minutes=10 - i), "pass", {"database": "pass", "cache": "warn"})
    ComponentState.objects.create(component="database", status="pass")
    ComponentState.objects.create(component="cache", status="warn", output="slow")
    m = now.replace(second=0, microsecond=0) - timedelta(minutes=1)
    minute("response_time_p95_ms", m, 250.0, 600)
    minute("request_rate_per_s", m, 10.0, 600)
    minute("error_rate_percent", m, 1.5, 600)
    project = ErrorProject.objects.create(name="shop")
    issue(project, "new-1")
    issue(project, "new-2")
    issue(project, "old", created_at=now - timedelta(days=3), regressed_at=now - timedelta(hours=2))
    issue(project, "older", created_at=now - timedelta(days=3))
    Backup.objects.create(
        kind="db", status="verified", started_at=now - timedelta(hours=30),
        verified_at=now - timedelta(hours=29),
    )  # fmt: skip
    Backup.objects.create(kind="db", status="failed", started_at=now - timedelta(hours=2))
    sample("web-1", now - timedelta(seconds=30))
    sample("web-2", now - timedelta(minutes=10))  # 3 intervals of 60 s ago and more: missing
    WorkerHeartbeat.objects.create(hostname="w1", last_seen=now - timedelta(seconds=5))
    WorkerHeartbeat.objects.create(hostname="w2", last_seen=now - timedelta(hours=1))
    for key, severity in (("a", 30), ("b", 20)):
        Alert.objects.create(
            key=key, severity=severity, summary=f"alert {key}", first_fired_at=now,
            last_fired_at=now,
        )  # fmt: skip
    Alert.objects.create(
        key="c", summary="over", state="resolved", first_fired_at=now, last_fired_at=now
    )
    MaintenanceWindow.objects.create(
        starts_at=now + timedelta(days=1), ends_at=now + timedelta(days=1, hours=1)
    )


def test_it_shows_figures_equal_to_what_the_database_holds(admin: Any) -> None:
    now = timezone.now()
    seed(now)
    client = Client()
    client.force_login(admin)
    response = client.get("/admin/")
    assert response.status_code == 200
    cards = response.context["cards"]
    status = cards["status"]
    assert status["overall"] == "warn" and status["warning"] == ["cache"]
    assert status["failing"] == []
    traffic = cards["traffic"]
    assert traffic["p95_ms"] == 250.0 and traffic["p95_ok"] is False
    assert traffic["target_ms"] == 200.0
    assert traffic["requests_per_min"] == 600.0
    assert traffic["errors_per_min"] == pytest.approx(9.0)  # 1.5 % of 600 requests
    assert cards["issues"]["new"] == 2 and cards["issues"]["regressed"] == 1
    backup = cards["backup"]
    assert backup["last"].status == "failed"
    assert backup["rpo_seconds"] == pytest.approx(30 * 3600, abs=5)
    assert backup["rpo_ok"] is False  # 30 h against the 26 h interval
    hosts = {h["host"]: h for h in cards["hosts"]["hosts"]}
    assert hosts["web-1"]["missing"] is False and hosts["web-2"]["missing"] is True
    assert hosts["web-1"]["disk"] == 63.0 and cards["hosts"]["missing"] == ["web-2"]
    workers = cards["workers"]
    assert workers["online"] == 1 and workers["depth"] == 7 and workers["oldest_wait"] == 42.5
    assert cards["alerts"]["count"] == 2
    assert [a.key for a in cards["alerts"]["listed"]] == ["a", "b"]
    assert cards["maintenance"]["down"] is False
    assert cards["maintenance"]["next"] is not None
    body = response.content.decode()
    assert 'id="ops-overall">warn<' in body and 'data-figure="p95">250 ms<' in body
    assert 'data-host="web-2" class="ops-missing"' in body


def test_an_empty_installation_says_no_data_instead_of_inventing_figures(admin: Any) -> None:
    client = Client()
    client.force_login(admin)
    body = client.get("/admin/").content.decode()
    assert "No scheduled health check has run yet" in body
    assert "No data: no request measured in the last hour." in body
    assert "No data: no backup has been taken." in body
    assert "No data: no host has been sampled" in body


def test_uptime_counts_time_without_a_run_as_unknown_not_up(settings: Any) -> None:
    start = timezone.now().replace(microsecond=0) - timedelta(hours=2)
    # A run a minute for the first hour (the last 10 minutes failing), then nothing.
    for i in range(60):
        run_at(start + timedelta(minutes=i), "fail" if i >= 50 else "pass")
    result = uptime.overall(start, start + timedelta(hours=2))
    # 50 minutes up; 9 failing minutes plus the last run's grace of 2 intervals (2 min)
    assert result.up == pytest.approx(50 * 60)
    assert result.down == pytest.approx(11 * 60)
    assert result.unknown == pytest.approx(59 * 60)
    assert result.percent == pytest.approx(100 * 50 / 61)
    assert result.coverage == pytest.approx(100 * 61 / 120)
    # 99.9 % of two hours allows 7.2 s of downtime; 11 minutes down overspends it.
    assert result.budget_left_minutes(99.9) == pytest.approx(0.12 - 11)
    per = uptime.per_component(start, start + timedelta(hours=2))
    assert per["database"] == result


def test_a_period_nobody_checked_has_no_uptime_figure() -> None:
    now = timezone.now()
    assert uptime.overall(now - timedelta(hours=24), now).percent is None


def test_the_period_selector_accepts_its_choices_and_refuses_others(admin: Any) -> None:
    client = Client()
    client.force_login(admin)
    for period in PERIODS:
        response = client.get("/admin/", {"period": period})
        assert response.status_code == 200
        assert response.context["period"] == period
    for bad in ("2h", "", "30d;drop", "x" * 500):
        response = client.get("/admin/", {"period": bad})
        if bad == "":
            assert response.status_code == 200  # no value: the default period
            continue
        assert response.status_code == 400
        assert b"period must be one of 1h, 6h, 24h, 7d, 30d" in response.content


def test_the_page_costs_a_bounded_number_of_queries(
    admin: Any, django_assert_max_num_queries: Any
) -> None:
    now = timezone.now()
    seed(now)
    for i in range(200):  # more history must not mean more queries
        sample(f"host-{i % 5}", now - timedelta(minutes=20 + i))
        run_at(now - timedelta(hours=1, minutes=i), "pass")
    client = Client()
    client.force_login(admin)
    client.get("/admin/")  # warm the permission and content-type caches
    with django_assert_max_num_queries(30):
        assert client.get("/admin/", {"period": "30d"}).status_code == 200
    with django_assert_max_num_queries(22):
        assert client.get("/console/dashboard/live/").status_code == 200


def test_the_live_fragment_is_for_staff_with_a_view_permission(
    operator: Any, outsider: Any
) -> None:
    assert Client().get("/console/dashboard/live/").status_code == 302
    client = Client()
    client.force_login(outsider)
    assert client.get("/console/dashboard/live/").status_code == 403
    client.force_login(operator)
    response = client.get("/console/dashboard/live/")
    assert response.status_code == 200
    assert b"<html" not in response.content  # a fragment, not a page
    assert b'id="card-issues"' in response.content


def test_a_card_is_shown_only_with_the_view_permission_of_what_it_reads(operator: Any) -> None:
    operator.user_permissions.remove(*operator.user_permissions.filter(codename="view_backup"))
    client = Client()
    client.force_login(operator)
    body = client.get("/admin/").content.decode()
    assert 'id="card-backup"' not in body and 'id="card-issues"' in body


def test_the_sidebar_groups_the_apps_by_area_and_links_the_console_pages(
    admin: Any, operator: Any
) -> None:
    client = Client()
    client.force_login(admin)
    body = client.get("/admin/").content.decode()
    assert 'id="nav-sidebar"' in body  # on the home page too
    assert 'id="ops-console-pages"' in body and 'href="/console/metrics/"' in body
    for area in ("Health", "Metrics", "Errors", "Backups", "Maintenance", "Alerts",
                 "Tasks &amp; queues", "Access &amp; audit"):  # fmt: skip
        assert f">{area}</a>" in body or f">{area}<" in body, area
    # A viewer without a model's permission does not see it listed.
    operator.user_permissions.remove(*operator.user_permissions.filter(codename="view_alert"))
    client.force_login(operator)
    body = client.get("/admin/").content.decode()
    assert "/admin/alerts/alert/" not in body and "/admin/alerts/channel/" in body


def test_a_maintenance_window_is_marked_on_the_charts(admin: Any) -> None:
    now = timezone.now()
    MaintenanceWindow.objects.create(
        starts_at=now - timedelta(hours=3), ends_at=now - timedelta(hours=2), message="upgrade"
    )
    minute("response_time_p95_ms", now - timedelta(hours=1), 80.0, 10)
    client = Client()
    client.force_login(admin)
    charts = client.get("/admin/").context["charts"]
    assert all(len(c["markers"]) == 1 for c in charts)
    assert "upgrade" in charts[0]["markers"][0]["label"]
    # The seeded threshold on p95 (warning at 200 ms) is the line drawn.
    assert charts[0]["thresholds"][0]["label"] == "warning 200 ms"


def test_a_run_id_groups_upkeep_steps_into_one_marker() -> None:
    from maintenance.markers import chart_markers
    from maintenance.models import MaintenanceRun

    now = timezone.now()
    run = uuid.uuid4()
    for step, minutes in (("vacuum", 30), ("cleanup", 20)):
        MaintenanceRun.objects.create(
            run_id=run, kind="daily", step=step, status="success",
            started_at=now - timedelta(minutes=minutes),
            finished_at=now - timedelta(minutes=minutes - 5),
        )  # fmt: skip
    markers = chart_markers(now - timedelta(hours=1), now)
    assert len(markers) == 1
    start, end, label = markers[0]
    assert end - start == timedelta(minutes=15) and label == "Daily upkeep run"


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_admin_sees_the_seeded_figures_and_the_live_region_refreshes(
    live_server: Any, page: Any, admin: Any
) -> None:
    from tests.fixtures_browser import shoot, sign_in

    now = timezone.now()
    seed(now)
    for i in range(239):  # four hours of minutes before the seeded one, with a gap
        if 100 <= i < 130:
            continue
        at = now.replace(second=0, microsecond=0) - timedelta(minutes=240 - i)
        minute("response_time_p95_ms", at, 120.0 + (i % 40) * 3, 60)
        minute("request_rate_per_s", at, 8.0 + (i % 30) / 10, 60)
        minute("error_rate_percent", at, (i % 50) / 25, 60)
    sign_in(page, live_server, "alice", "alice-password")
    assert page.locator("#ops-overall").inner_text() == "warn"
    assert page.locator('[data-figure="p95"]').inner_text() == "250 ms"
    assert page.locator('[data-figure="requests"]').inner_text() == "600"
    assert page.locator('[data-figure="new-issues"]').inner_text() == "2"
    assert page.locator('[data-figure="workers"]').inner_text() == "1"
    assert page.locator('[data-figure="alerts"]').inner_text() == "2"
    assert "missing" in page.locator('tr[data-host="web-2"]').inner_text()
    assert page.locator("#nav-sidebar").is_visible()
    assert page.locator("figure.ops-chart").count() == 3
    # A row changes: the live region shows it within the 5 s refresh (and some slack).
    Alert.objects.create(
        key="d", severity=30, summary="disk full", first_fired_at=now, last_fired_at=now
    )
    page.wait_for_function(
        "document.querySelector('[data-figure=\"alerts\"]').textContent.trim() === '3'",
        timeout=7000,
    )
    shoot(page, "dashboard")
    page.emulate_media(color_scheme="dark")  # the admin's dark theme follows the system's
    shoot(page, "dashboard-dark", widths=(1280,))
    page.emulate_media(color_scheme="light")
    page.goto(f"{live_server.url}/admin/?period=7d")
    assert page.locator('.ops-period [aria-current="page"]').inner_text() == "7d"
    shoot(page, "dashboard-7d", widths=(390,))
    page.click("text=timeline and uptime")
    page.wait_for_selector("#health-timeline")
    assert page.locator('#health-timeline tr[data-component="cache"] rect.ops-tl-warn').count()
    shoot(page, "health-timeline")


def test_the_health_timeline_shows_each_component_s_segments_and_uptime(admin: Any) -> None:
    now = timezone.now()
    start = now - timedelta(hours=1)
    for i in range(30):  # the first half hour checked, the second half not
        run_at(start + timedelta(minutes=i, seconds=30), "fail" if 10 <= i < 15 else "pass")
    client = Client()
    client.force_login(admin)
    response = client.get("/admin/health/healthcheck/timeline/", {"period": "1h"})
    assert response.status_code == 200
    (row,) = response.context["timeline"]["rows"]
    statuses = [s["status"] for s in row["segments"]]
    assert statuses == ["pass", "fail", "pass", "unknown"]
    # Each run vouches for the minute after it, the last one for two: 24 + 2 min up, 5 down.
    assert row["uptime"].percent == pytest.approx(100 * 26 / 31, abs=0.1)
    assert row["uptime"].coverage == pytest.approx(100 * 31 / 60, abs=0.1)
    assert b'data-component="database"' in response.content
    assert client.get("/admin/health/healthcheck/timeline/", {"period": "2d"}).status_code == 400
