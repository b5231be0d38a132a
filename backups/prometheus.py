"""Backup figures for /metrics: age and size of the newest completed backup."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from backups.models import Backup


def collect() -> Iterable[Metric]:
    newest = Backup.objects.latest_restorable()
    age = GaugeMetricFamily(
        "ops_backup_last_completed_age_seconds", "Age of the newest completed backup"
    )
    size = GaugeMetricFamily(
        "ops_backup_last_completed_size_bytes", "Stored size of the newest completed backup"
    )
    restore = GaugeMetricFamily(
        "ops_backup_last_verify_restore_seconds",
        "Restore time measured by the newest verification (RTO)",
    )
    if newest is not None:
        moment = newest.finished_at or newest.started_at
        age.add_metric([], (timezone.now() - moment).total_seconds())
        size.add_metric([], float(newest.size))
    verified = Backup.objects.filter(restore_seconds__isnull=False).order_by("-verified_at").first()
    if verified is not None and verified.restore_seconds is not None:
        restore.add_metric([], verified.restore_seconds)
    return [age, size, restore]
