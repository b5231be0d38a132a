"""Alert figures for /metrics (collected by the metrics app from every app's `collect()`)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric

from .models import Alert, Delivery, Severity


def collect() -> Iterable[Metric]:
    firing = GaugeMetricFamily(
        "opsconsole_alerts_firing",
        "Alerts currently firing, by severity and whether a silence or window mutes them.",
        labels=["severity", "suppressed"],
    )
    rows = (
        Alert.objects.firing()
        .values("severity", "suppressed_by")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        label = (str(Severity(row["severity"]).label), "true" if row["suppressed_by"] else "false")
        counts[label] = counts.get(label, 0) + row["n"]
    for severity in Severity:
        for suppressed in ("false", "true"):
            firing.add_metric(
                [str(severity.label), suppressed], counts.get((str(severity.label), suppressed), 0)
            )
    yield firing

    deliveries = GaugeMetricFamily(
        "opsconsole_alert_deliveries",
        "Rows in the alert delivery log (kept ALERTS_RETENTION_DAYS), by status.",
        labels=["status"],
    )
    by_status = dict(Delivery.objects.values_list("status").annotate(n=Count("id")).order_by())
    for status in Delivery.Status:
        deliveries.add_metric([status.value], by_status.get(status.value, 0))
    yield deliveries
