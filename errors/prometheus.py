"""Prometheus metrics for /metrics (discovered by the metrics app)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric

from errors.models import ErrorReport, InboxEvent, Issue


def collect() -> Iterable[Metric]:
    events = GaugeMetricFamily(
        "ops_error_events",
        "Error events stored (within retention), per project and level.",
        labels=["project", "level"],
    )
    rows = ErrorReport.objects.values_list("project__name", "level").annotate(n=Count("id"))
    for project, level, n in rows:
        events.add_metric([project, level], n)
    yield events
    issues = GaugeMetricFamily(
        "ops_error_issues", "Issues per project and status.", labels=["project", "status"]
    )
    for project, status, n in Issue.objects.values_list("project__name", "status").annotate(
        n=Count("id")
    ):
        issues.add_metric([project, status], n)
    yield issues
    yield GaugeMetricFamily(
        "ops_error_inbox_backlog",
        "Accepted events waiting to be grouped and stored.",
        value=InboxEvent.objects.count(),
    )
