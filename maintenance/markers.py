"""Maintenance as chart markers: planned windows and upkeep runs overlapping a time range."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Max, Min
from django.db.models.functions import Coalesce

from maintenance.models import MaintenanceRun, MaintenanceWindow

# At most this many of each kind per chart (a marker narrower than a pixel says nothing).
MARKER_LIMIT = 50


def chart_markers(start: datetime, end: datetime) -> list[tuple[datetime, datetime, str]]:
    """(start, end, label) of every maintenance window and upkeep run within [start, end]."""
    markers: list[tuple[datetime, datetime, str]] = []
    windows = MaintenanceWindow.objects.filter(starts_at__lt=end, ends_at__gt=start).order_by(
        "starts_at"
    )[:MARKER_LIMIT]
    for w in windows.only("starts_at", "ends_at", "message"):
        markers.append((w.starts_at, w.ends_at, f"Maintenance window{': ' if w.message else ''}"
                        f"{w.message}"))  # fmt: skip
    runs = (
        MaintenanceRun.objects.filter(started_at__lt=end)
        .values("run_id", "kind")
        .annotate(first=Min("started_at"), last=Max(Coalesce("finished_at", "started_at")))
        .filter(last__gt=start)
        .order_by("first")[:MARKER_LIMIT]
    )
    for run in runs:
        markers.append((run["first"], run["last"], f"{run['kind'].capitalize()} upkeep run"))
    return markers
