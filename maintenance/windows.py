"""Maintenance windows: announce their start and end exactly once each, even with two workers.

Each transition is claimed with a conditional UPDATE on `started_notified_at` /
`ended_notified_at`; only the worker whose UPDATE changed the row sends the signal.
"""

from __future__ import annotations

import fnmatch
import logging
from datetime import datetime
from typing import Any

from django.utils import timezone

from maintenance import state
from maintenance.models import MaintenanceState, MaintenanceWindow
from maintenance.signals import maintenance_window_ended, maintenance_window_started
from opsconsole import audit

logger = logging.getLogger(__name__)


def active_windows(now: datetime | None = None) -> list[MaintenanceWindow]:
    """Windows in force at `now` (started, not yet ended)."""
    now = now or timezone.now()
    return list(MaintenanceWindow.objects.filter(starts_at__lte=now, ends_at__gt=now))


def silencing_window(key: str, now: datetime | None = None) -> MaintenanceWindow | None:
    """The active window whose `silence_keys` patterns (fnmatch) match alert `key`, if any."""
    for window in active_windows(now):
        if any(fnmatch.fnmatchcase(key, pattern) for pattern in window.silence_keys or []):
            return window
    return None


def check_windows(*, now: datetime | None = None) -> dict[str, list[int]]:
    """Start windows that are due and end windows that are over. Idempotent."""
    now = now or timezone.now()
    started: list[int] = []
    ended: list[int] = []
    due = MaintenanceWindow.objects.filter(
        starts_at__lte=now, started_notified_at__isnull=True
    ).order_by("starts_at")
    for window in due:
        if _claim(window.pk, "started_notified_at", now):
            _start(window, now)
            started.append(window.pk)
    over = MaintenanceWindow.objects.filter(
        ends_at__lte=now, ended_notified_at__isnull=True, started_notified_at__isnull=False
    ).order_by("ends_at")
    for window in over:
        if _claim(window.pk, "ended_notified_at", now):
            _end(window)
            ended.append(window.pk)
    return {"started": started, "ended": ended}


def _claim(window_id: int, field: str, now: datetime) -> bool:
    updated = MaintenanceWindow.objects.filter(pk=window_id, **{f"{field}__isnull": True}).update(
        **{field: now}
    )
    return updated == 1


def _start(window: MaintenanceWindow, now: datetime) -> None:
    already_over = window.ends_at <= now
    # A window found only after it ended (beat was down) still announces itself, but does
    # not flip the site down for no time at all.
    if (
        window.enable_maintenance_mode
        and not already_over
        and not state.current(fresh=True).is_down
    ):
        state.enable(
            message=window.message,
            retry_after=max(60, min(3600, int((window.ends_at - now).total_seconds()))),
            actor=f"window:{window.pk}",
            window_id=window.pk,
        )
    audit.record(
        "maintenance.window_started",
        actor="system",
        target=f"window:{window.pk}",
        details=_details(window, missed=already_over),
    )
    _send(
        maintenance_window_started,
        window_id=window.pk,
        message=window.message,
        silence_keys=list(window.silence_keys or []),
        ends_at=window.ends_at,
    )


def _end(window: MaintenanceWindow) -> None:
    # Only undo what this window did: a manual `down` during the window stays down.
    row = MaintenanceState.objects.filter(pk=1).first()
    ours = row is not None and row.is_down and row.window_id == window.pk
    if ours:
        state.disable(actor=f"window:{window.pk}")
    audit.record(
        "maintenance.window_ended",
        actor="system",
        target=f"window:{window.pk}",
        details=_details(window, missed=False) | {"maintenance_mode_turned_off": ours},
    )
    _send(maintenance_window_ended, window_id=window.pk)


def _details(window: MaintenanceWindow, *, missed: bool) -> dict[str, Any]:
    return {
        "message": window.message,
        "starts_at": window.starts_at.isoformat(),
        "ends_at": window.ends_at.isoformat(),
        "enable_maintenance_mode": window.enable_maintenance_mode,
        "silence_keys": list(window.silence_keys or []),
        "started_late_after_end": missed,
    }


def _send(signal: Any, **kwargs: Any) -> None:
    # A failing receiver must not leave the claim made but the other receivers unserved.
    for receiver, result in signal.send_robust(sender=MaintenanceWindow, **kwargs):
        if isinstance(result, Exception):
            logger.error(
                "receiver %r of %s failed",
                receiver,
                kwargs.get("window_id"),
                exc_info=(type(result), result, result.__traceback__),
            )
