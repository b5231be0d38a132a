"""The metrics console page: charts of measured series, for staff with the view permission."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from metrics.collectors import collect_resource_usage
from metrics.models import PerformanceMetric
from tests.fixtures_browser import shoot, sign_in

pytestmark = pytest.mark.django_db


def _measured() -> None:
    now = timezone.now().replace(second=0, microsecond=0)
    for minute in range(30):
        PerformanceMetric.objects.create(
            recorded_at=now - timedelta(minutes=minute),
            metric="response_time_p95_ms",
            value=100.0 + minute,
            samples=5,
        )
    collect_resource_usage()


def test_staff_with_the_view_permission_see_charts(operator: Any) -> None:
    _measured()
    client = Client()
    client.force_login(operator)
    response = client.get("/console/metrics/")
    assert response.status_code == 200
    body = response.content.decode()
    # p95 (a line) and at least the host's CPU (one sample so far: a dot)
    assert body.count("<polyline") + body.count('class="ops-chart-dot"') >= 2
    assert "Response time p95" in body
    assert "not measured in this window" in body  # nothing invented for the empty series


def test_others_are_refused(outsider: Any) -> None:
    anonymous = Client().get("/console/metrics/")
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
    client = Client()
    client.force_login(outsider)
    assert client.get("/console/metrics/").status_code == 403


def test_a_bad_window_is_a_clear_400(operator: Any) -> None:
    client = Client()
    client.force_login(operator)
    response = client.get("/console/metrics/", {"hours": "9999"})
    assert response.status_code == 400
    assert b"hours must be one of" in response.content


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_page_draws_its_charts_in_a_real_browser(
    live_server: Any, operator: Any, page: Any
) -> None:
    _measured()
    sign_in(page, live_server, "bob", "bob-password")
    page.goto(f"{live_server.url}/console/metrics/")
    lines = page.locator("svg polyline")
    assert lines.count() + page.locator("svg circle.ops-chart-dot").count() >= 2
    box = lines.first.bounding_box()
    # 30 minutes drawn on a 24-hour axis: about 1/48 of the chart's width.
    assert box is not None and 5 < box["width"] < 60
    page.goto(f"{live_server.url}/console/metrics/?hours=1")
    box = page.locator("svg polyline").first.bounding_box()
    assert box is not None and box["width"] > 200  # the same half hour on a 1 h axis
    shoot(page, "metrics-console")
