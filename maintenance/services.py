"""The maintenance app's verbs: maintenance mode on/off (with validation), windows, upkeep runs,
and the retention cleanup of the audit trail, Celery results and our own run records."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from django_celery_results.models import TaskResult

from maintenance import bypass, state, upkeep
from maintenance.models import MaintenanceRun
from maintenance.windows import active_windows, check_windows, silencing_window
from opsconsole.models import SystemLog
from opsconsole.retention import BATCH_SIZE, delete_in_batches

__all__ = [
    "active_windows",
    "bring_down",
    "bring_up",
    "check_windows",
    "cleanup",
    "perform_daily_maintenance",
    "perform_weekly_maintenance",
    "silencing_window",
]

MAX_RETRY_AFTER = 86_400


class InvalidRequest(ValueError):
    """Bad input for a maintenance action; the message says what to do."""


def bring_down(
    *,
    message: str = "",
    retry_after: int = 60,
    secret: str | None = None,
    allowed_ips: list[str] | None = None,
    actor: Any = "system",
) -> state.Snapshot:
    """Validate and turn maintenance mode on (audited by state.enable)."""
    if not 1 <= retry_after <= MAX_RETRY_AFTER:
        raise InvalidRequest(f"retry must be between 1 and {MAX_RETRY_AFTER} seconds")
    if secret is not None:
        problem = bypass.secret_problem(secret)
        if problem:
            raise InvalidRequest(problem)
    if len(message) > 2000:
        raise InvalidRequest("the message must be at most 2000 characters")
    try:
        allowed = bypass.normalise_allowed(allowed_ips or [])
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    return state.enable(
        message=message,
        retry_after=retry_after,
        secret=secret,
        allowed_ips=allowed,
        actor=actor,
    )


def bring_up(*, actor: Any = "system") -> state.Snapshot:
    return state.disable(actor=actor)


def perform_daily_maintenance(*, actor: Any = "system", now: datetime | None = None) -> Any:
    return upkeep.run("daily", actor=actor, now=now)


def perform_weekly_maintenance(*, actor: Any = "system", now: datetime | None = None) -> Any:
    return upkeep.run("weekly", actor=actor, now=now)


def cleanup(*, now: datetime | None = None, batch_size: int | None = None) -> dict[str, int]:
    """Delete audit records, Celery results and run records past their retention, in batches."""
    now = now or timezone.now()
    size = batch_size or settings.OPS_RETENTION_BATCH_SIZE or BATCH_SIZE
    plan = [
        (
            "opsconsole.SystemLog",
            SystemLog.objects.all(),
            "created_at",
            settings.OPS_AUDIT_RETENTION_DAYS,
        ),
        (
            "django_celery_results.TaskResult",
            TaskResult.objects.all(),
            "date_done",
            settings.OPS_TASK_RESULT_RETENTION_DAYS,
        ),
        (
            "maintenance.MaintenanceRun",
            MaintenanceRun.objects.all(),
            "started_at",
            settings.OPS_MAINTENANCE_RUN_RETENTION_DAYS,
        ),
    ]
    deleted: dict[str, int] = {}
    for label, queryset, field, days in plan:
        cutoff = now - timedelta(days=days)
        deleted[label] = delete_in_batches(
            queryset.filter(**{f"{field}__lt": cutoff}), batch_size=size
        )
    return deleted
