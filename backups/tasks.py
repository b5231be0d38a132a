"""Backup jobs for Celery beat: thin wrappers around the services."""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from backups import services
from backups.errors import BackupError
from backups.models import Backup
from backups.restore import restore_backup as run_restore
from backups.retention import apply_retention
from opsconsole import audit
from opsconsole.models import SystemLog

logger = logging.getLogger(__name__)

# A dump of a large database takes hours: its own limits (OPS_BACKUP_TASK_TIME_LIMIT), far
# above the defaults for everything else; the hard limit leaves 10 minutes to clean up.
SOFT_LIMIT = settings.OPS_BACKUP_TASK_TIME_LIMIT
HARD_LIMIT = SOFT_LIMIT + 600


@shared_task(
    name="backups.tasks.run_scheduled_backup",
    ignore_result=False,
    soft_time_limit=SOFT_LIMIT,
    time_limit=HARD_LIMIT,
)
def run_scheduled_backup(kind: str = "full", min_interval_hours: float = 1.0) -> dict[str, Any]:
    """Daily backup, then retention. Idempotent: a second worker (or a retry) skips the run
    when a backup is running or one completed within `min_interval_hours`."""
    recent = timezone.now() - timedelta(hours=min_interval_hours)
    if Backup.objects.restorable().filter(kind=kind, started_at__gte=recent).exists():
        return {"skipped": "a backup completed recently"}
    try:
        backup = services.create_backup(kind, actor="beat")
    except BackupError as exc:
        # Already recorded, audited and announced by the service.
        logger.warning("backups: scheduled backup did not run: %s", exc)
        return {"failed": str(exc)}
    deleted = []
    try:
        deleted = [b.pk for b in apply_retention()]
    except BackupError as exc:
        logger.error("backups: retention did not run: %s", exc)
    return {"backup_id": backup.pk, "deleted": deleted}


@shared_task(
    name="backups.tasks.verify_latest_backup",
    ignore_result=False,
    soft_time_limit=SOFT_LIMIT,
    time_limit=HARD_LIMIT,
)
def verify_latest_backup(backup_id: int | None = None) -> dict[str, Any]:
    try:
        backup = services.verify_backup(backup_id)
    except BackupError as exc:
        logger.warning("backups: verification did not run: %s", exc)
        return {"failed": str(exc)}
    return {
        "backup_id": backup.pk,
        "verified": not backup.verification_failed,
        "restore_seconds": backup.restore_seconds,
    }


@shared_task(
    name="backups.tasks.create_backup",
    ignore_result=False,
    soft_time_limit=SOFT_LIMIT,
    time_limit=HARD_LIMIT,
)
def create_backup(kind: str = "full", actor: str = "task") -> dict[str, Any]:
    try:
        return {"backup_id": services.create_backup(kind, actor=actor).pk}
    except BackupError as exc:
        return {"failed": str(exc)}


@shared_task(
    name="backups.tasks.restore_backup",
    ignore_result=False,
    soft_time_limit=SOFT_LIMIT,
    time_limit=HARD_LIMIT,
)
def restore_backup(backup_id: int, actor: str, files: bool = False) -> dict[str, Any]:
    """A restore asked for from the console: the database (and, with `files`, the files) of
    `backup_id` replace the live ones. The service audits the outcome under `actor`."""
    started = timezone.now()
    try:
        return run_restore(backup_id, database=True, files=files, actor=actor)
    except BackupError as exc:
        logger.error("backups: restore of backup %s failed: %s", backup_id, exc)
        _audit_refused_restore(backup_id, actor, str(exc), started)
        return {"failed": str(exc)}


def _audit_refused_restore(backup_id: int, actor: str, reason: str, started: Any) -> None:
    """The service audits a restore that failed while it ran; one refused before it began (the
    backup not restorable, its manifest gone) is recorded here, so the console shows it."""
    target = f"backup {backup_id}"
    with contextlib.suppress(DatabaseError):
        recorded = SystemLog.objects.filter(
            action="backup.restore", target=target, created_at__gte=started
        ).exists()
        if not recorded:
            audit.record(
                "backup.restore",
                actor=actor,
                target=target,
                result=SystemLog.Result.FAILURE,
                details={"reason": reason[:500]},
            )
