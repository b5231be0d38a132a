"""The metrics detail pages and the errors pages in a real browser, signed in as an admin, at
1280 px and 390 px (screenshots under var/screenshots/ or OPS_TEST_SCREENSHOTS)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from errors.models import ErrorProject, ErrorReport, Issue
from metrics.models import PerformanceMetric, ResourceUsage, SlowQuery, SlowRequest
from metrics.sqlshape import fingerprint, normalize_sql
from tests.fixtures_browser import shoot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TASK = "billing.tasks.send_invoice"


def _seed_metrics() -> None:
    now = timezone.now().replace(second=0, microsecond=0)
    rows = []
    for minute in range(1, 40):
        at = now - timedelta(minutes=minute)
        for route, n, p95 in (("invoices/<int:pk>/", 12, 180.0), ("health/live", 60, 3.0)):
            for metric, value in (
                ("route_requests", n),
                ("route_response_time_p50_ms", p95 / 3),
                ("route_response_time_p95_ms", p95 + minute),
                ("route_response_time_p99_ms", p95 * 2),
                ("route_errors", 1 if minute % 10 == 0 and n == 12 else 0),
                ("route_queries_per_request", 4.0 if n == 12 else 0.0),
                ("route_query_time_avg_ms", 12.5 if n == 12 else 0.0),
            ):
                rows.append(PerformanceMetric(recorded_at=at, metric=metric, key=route,
                                              value=value, samples=n))  # fmt: skip
        for metric, value in (("task_count", 3.0), ("task_runtime_p95_ms", 850.0)):
            rows.append(PerformanceMetric(recorded_at=at, metric=metric, key=TASK,
                                          value=value, samples=3))  # fmt: skip
        rows.append(PerformanceMetric(recorded_at=at, metric="response_time_p95_ms", key="",
                                      value=90.0 + minute, samples=72))  # fmt: skip
    PerformanceMetric.objects.bulk_create(rows)
    for hour in range(6):
        ResourceUsage.objects.create(
            recorded_at=now - timedelta(hours=5 - hour), host="web-1", cpu_percent=20 + hour,
            cpu_count=2, memory_percent=40, memory_used_bytes=4 * 2**30,
            memory_total_bytes=8 * 2**30, swap_percent=0, swap_used_bytes=0,
            disks={"/": {"total": 100 * 2**30, "used": (60 + hour) * 2**30,
                         "percent": 60.0 + hour}},
            net_bytes_recv_total=0, net_bytes_sent_total=0, process_count=120,
            load_1=0.5, load_5=0.4, load_15=0.3,
        )  # fmt: skip
    SlowRequest.objects.create(route="invoices/<int:pk>/", method="GET", status=200,
                               duration_ms=1840.0, query_count=41, query_ms=900.0)  # fmt: skip
    for pk, ms in ((7, 420.0), (8, 1310.0)):
        sql = f'SELECT "billing_invoice"."id" FROM "billing_invoice" WHERE "id" = {pk}'  # noqa: S608
        shape = normalize_sql(sql)
        SlowQuery.objects.create(sql=sql, normalized=shape, fingerprint=fingerprint(shape),
                                 duration_ms=ms, route="invoices/<int:pk>/")  # fmt: skip


def _seed_issue() -> Issue:
    project = ErrorProject.objects.create(name="billing")
    now = timezone.now()
    title = "ValueError: invoice 1234 is not payable"
    issue = Issue.objects.create(project=project, fingerprint="f", title=title,
                                 first_seen=now, last_seen=now, count=0)  # fmt: skip
    for i in range(6):
        at = now - timedelta(hours=i * 7)
        ErrorReport.objects.create(
            project=project, issue=issue, event_id=uuid.uuid4().hex, reported_at=at,
            received_at=at, exception_type="ValueError", message="invoice 1234 is not payable",
            release=f"billing@1.{5 - i}", environment="production" if i % 3 else "staging",
            tags={"browser": "Firefox" if i % 2 else "Chrome", "team": "payments"},
            user={"id": f"user-{i}", "email": f"user{i}@example.com"},
        )  # fmt: skip
    Issue.objects.filter(pk=issue.pk).update(count=6)
    return issue


@pytest.mark.django_db(transaction=True)
def test_an_admin_opens_each_detail_page_at_both_widths(
    live_server: Any, admin: Any, page: Any
) -> None:
    _seed_metrics()
    issue = _seed_issue()
    sign_in(page, live_server, "alice", "alice-password")
    pages = [
        ("metrics-routes", "/console/metrics/routes/?period=1h", "#route-table", "invoices/"),
        ("metrics-slow", "/console/metrics/slow/?period=1h", "#slow-queries", '"id" = ?'),
        ("metrics-tasks", "/console/metrics/tasks/?period=1h", "#task-table", "send_invoice"),
        ("metrics-reports", "/console/metrics/reports/", "#performance-report", "disk /: full in"),
        ("errors-issue", f"/admin/errors/issue/{issue.pk}/change/", "#tag-facets", "Firefox"),
        (
            "errors-issue-event-3",
            f"/admin/errors/issue/{issue.pk}/change/?event=3",
            "#latest-event",
            "user-2",
        ),  # fmt: skip
        (
            "errors-issues",
            "/admin/errors/issue/?environment=production",
            "#issue-filters",
            "invoice 1234",
        ),  # fmt: skip
    ]
    for name, path, selector, text in pages:
        page.goto(f"{live_server.url}{path}")
        assert page.locator(selector).count() == 1, name
        assert text in page.content(), name
        shoot(page, name)
        page.set_viewport_size({"width": 390, "height": 900})
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, f"{name} is {overflow}px wider than a phone"
        page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/console/metrics/")
    page.click("text=Routes")
    assert "/console/metrics/routes/" in page.url
    # The admin's dark theme follows the system's: the pages take its colours.
    page.emulate_media(color_scheme="dark")
    for name, path in (("metrics-routes", "/console/metrics/routes/?period=1h"),
                       ("errors-issue", f"/admin/errors/issue/{issue.pk}/change/")):  # fmt: skip
        page.goto(f"{live_server.url}{path}")
        shoot(page, f"{name}-dark", widths=(1280,))
