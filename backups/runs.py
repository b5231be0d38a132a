"""Bookkeeping of backup runs: heartbeats while one runs, and what becomes of a run whose
process is gone (reaped as failed, or adopted as completed when its manifest was written).

Creating a backup and restoring one both need this, so it lives apart from either.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from backups import manifest as manifests
from backups import storage
from backups.models import Backup
from backups.pipeline import Progress
from backups.signals import backup_failed, notify

logger = logging.getLogger(__name__)

HEARTBEAT_EVERY = 30.0


class Heartbeat:
    """Wraps a progress callback; touches heartbeat_at now and then so others see we live."""

    def __init__(self, backup: Backup, progress: Progress | None) -> None:
        self.backup, self.progress, self.last = backup, progress, time.monotonic()

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if self.progress:
            self.progress(phase, done, total)
        if time.monotonic() - self.last >= HEARTBEAT_EVERY:
            self.last = time.monotonic()
            Backup.objects.filter(pk=self.backup.pk).update(heartbeat_at=timezone.now())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_stale(*, now: datetime | None = None) -> list[int]:
    """Mark running backups that died (killed process, lost host) as failed, remove partials."""
    now = now or timezone.now()
    stale_after = timedelta(seconds=settings.OPS_BACKUP_STALE_AFTER)
    host = settings.OPS_HOST_NAME
    reaped = []
    for backup in Backup.objects.filter(status=Backup.Status.RUNNING):
        beat = backup.heartbeat_at or backup.started_at
        dead_here = backup.hostname == host and backup.pid and not _pid_alive(backup.pid)
        if not dead_here and now - beat < stale_after:
            continue
        if adopt_from_manifest(backup):
            continue
        updated = Backup.objects.filter(pk=backup.pk, status=Backup.Status.RUNNING).update(
            status=Backup.Status.FAILED,
            finished_at=now,
            error="the backup process stopped before finishing (killed or lost)",
        )
        if not updated:
            continue
        if backup.name:
            try:
                storage.delete_folder(backup.name)
            except Exception as exc:
                logger.warning("backups: could not remove partial %s: %s", backup.name, exc)
        reaped.append(backup.pk)
        notify(
            backup_failed,
            backup_id=backup.pk,
            kind=backup.kind,
            reason="the backup process stopped before finishing",
            phase="backup",
        )
    return reaped


def adopt_from_manifest(backup: Backup) -> bool:
    """A run that died after writing its manifest did finish: record it as completed.

    This also keeps a restored database (whose copy of the backup row still says "running")
    from deleting the very backup it was restored from.
    """
    try:
        document = manifests.read(backup.name) if backup.name else None
    except Exception:
        return False
    if not document or document.get("id") != backup.pk:
        return False
    updated = Backup.objects.filter(pk=backup.pk, status=Backup.Status.RUNNING).update(
        status=Backup.Status.COMPLETED,
        finished_at=datetime.fromisoformat(document["finished_at"]),
        duration=document.get("duration"),
        size=document.get("size", 0),
        artifacts=document.get("artifacts", []),
        row_counts=document.get("row_counts", {}),
        engine=document.get("engine", ""),
        server_version=document.get("server_version", ""),
    )
    return bool(updated)


def reconcile_after_restore() -> None:
    """A restored database remembers the backup that was running when it was dumped (often
    the very one restored). Finish such rows from their manifests, or mark them failed: no
    process of the old database is still writing them."""
    for backup in Backup.objects.filter(status=Backup.Status.RUNNING):
        if not adopt_from_manifest(backup):
            Backup.objects.filter(pk=backup.pk, status=Backup.Status.RUNNING).update(
                status=Backup.Status.FAILED,
                finished_at=timezone.now(),
                error="interrupted: the database was restored while it ran",
            )
