"""The seed's alert rules send critical_error_occurred with the documented kwargs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from errors import services
from errors.ingest import Envelope
from errors.models import ErrorProject
from errors.signals import critical_error_occurred
from tests.fixtures_errors import make_event

pytestmark = pytest.mark.django_db
WEDNESDAY_10_UTC = datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("UTC"))
SATURDAY_10_UTC = datetime(2026, 11, 28, 10, 0, tzinfo=ZoneInfo("UTC"))


@pytest.fixture
def sent() -> Iterator[list[dict[str, Any]]]:
    received: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        kwargs.pop("signal", None)
        received.append(kwargs)

    critical_error_occurred.connect(receiver, weak=False, dispatch_uid="test-errors-alerts")
    yield received
    critical_error_occurred.disconnect(dispatch_uid="test-errors-alerts")


def quiet(project: ErrorProject, **rules: Any) -> ErrorProject:
    """Switch every rule off, then on the ones the test is about."""
    for name, value in {
        "alert_on_critical": False,
        "alert_on_new_issue": False,
        "alert_on_regression": False,
        "frequency_threshold": 0,
        "business_hours_alerts": False,
        **rules,
    }.items():
        setattr(project, name, value)
    project.save()
    return project


def ingest(project: ErrorProject, **fields: Any) -> None:
    event = make_event(**fields)
    services.enqueue(
        project.pk,
        Envelope(headers={}, event=json.dumps(event).encode(), event_id=event["event_id"]),
    )
    services.digest()


def test_a_new_issue_alerts_with_the_documented_kwargs(project, sent):
    proj, _ = project
    quiet(proj, alert_on_new_issue=True)
    ingest(proj)
    assert len(sent) == 1
    alert = sent[0]
    assert set(alert) == {"issue_id", "project", "title", "severity", "reason", "url", "count"}
    assert alert["reason"] == "new_issue"
    assert alert["project"] == "billing"
    assert alert["title"] == "ValueError: invoice 1234 is not payable"
    assert alert["url"].endswith(f"/admin/errors/issue/{alert['issue_id']}/change/")
    assert alert["count"] == 1
    ingest(proj)
    assert len(sent) == 1, "a second event of the same issue is not new"


def test_a_critical_error_alerts(project, sent):
    proj, _ = project
    quiet(proj, alert_on_critical=True)
    ingest(proj, level="fatal")
    assert [(a["reason"], a["severity"]) for a in sent] == [("critical", "critical")]


def test_more_than_ten_similar_errors_in_an_hour_alert(project, sent):
    proj, _ = project
    quiet(proj, frequency_threshold=10, frequency_window_minutes=60)
    for _ in range(10):
        ingest(proj)
    assert sent == []
    ingest(proj)
    assert [a["reason"] for a in sent] == ["frequency"]
    assert sent[0]["count"] == 11


def test_an_error_during_business_hours_alerts(project, sent):
    proj, _ = project
    quiet(proj, business_hours_alerts=True)
    with time_machine.travel(SATURDAY_10_UTC):
        ingest(proj)
    assert sent == []
    with time_machine.travel(WEDNESDAY_10_UTC):
        ingest(proj, level="warning")
        assert sent == [], "only error-level events count"
        ingest(proj)
    assert [a["reason"] for a in sent] == ["business_hours"]


def test_business_hours_follow_the_configured_time_zone(project, sent):
    proj, _ = project
    quiet(proj, business_hours_alerts=True, business_timezone="America/New_York")
    with time_machine.travel(WEDNESDAY_10_UTC):  # 05:00 in New York
        ingest(proj)
    assert sent == []


def test_a_regression_alerts(project, sent):
    proj, _ = project
    quiet(proj, alert_on_regression=True)
    ingest(proj)
    from errors.models import Issue

    services.resolve_issue(Issue.objects.get())
    ingest(proj)
    assert [a["reason"] for a in sent] == ["regression"]


def test_an_ignored_issue_does_not_alert(project, sent):
    proj, _ = project
    quiet(proj, alert_on_critical=True)
    ingest(proj)
    from errors.models import Issue

    services.ignore_issue(Issue.objects.get())
    ingest(proj, level="fatal")
    assert sent == []
