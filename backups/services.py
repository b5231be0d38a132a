"""The backup verbs: create, verify, restore, retention and cleanup.

Views, tasks and commands all call these. Restore and verification live in
`backups.restore`, retention in `backups.retention`; they are re-exported here.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from backups import manifest as manifests
from backups import storage
from backups.common import database_engine, notify, pg_connection
from backups.engines import files as files_engine
from backups.engines import postgres, sqlite
from backups.errors import BackupError
from backups.models import Backup
from backups.pipeline import Progress, Sink, gzip_compressor
from backups.signals import backup_completed, backup_failed
from opsconsole import audit
from opsconsole.models import SystemLog
from opsconsole.retention import delete_in_batches

logger = logging.getLogger(__name__)

HEARTBEAT_EVERY = 30.0

__all__ = [
    "BackupError",
    "apply_retention",
    "cleanup",
    "create_backup",
    "reap_stale",
    "restore_backup",
    "verify_backup",
]


def _folder(backup: Backup) -> str:
    return f"{backup.started_at:%Y%m%dT%H%M%SZ}-{backup.pk}-{backup.kind}"


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
    host = socket.gethostname()
    reaped = []
    for backup in Backup.objects.filter(status=Backup.Status.RUNNING):
        beat = backup.heartbeat_at or backup.started_at
        dead_here = backup.hostname == host and backup.pid and not _pid_alive(backup.pid)
        if not dead_here and now - beat < stale_after:
            continue
        if _adopt_from_manifest(backup):
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


def _adopt_from_manifest(backup: Backup) -> bool:
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
        if not _adopt_from_manifest(backup):
            Backup.objects.filter(pk=backup.pk, status=Backup.Status.RUNNING).update(
                status=Backup.Status.FAILED,
                finished_at=timezone.now(),
                error="interrupted: the database was restored while it ran",
            )


class _Heartbeat:
    """Wraps a progress callback; touches heartbeat_at now and then so others see we live."""

    def __init__(self, backup: Backup, progress: Progress | None) -> None:
        self.backup, self.progress, self.last = backup, progress, time.monotonic()

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if self.progress:
            self.progress(phase, done, total)
        if time.monotonic() - self.last >= HEARTBEAT_EVERY:
            self.last = time.monotonic()
            Backup.objects.filter(pk=self.backup.pk).update(heartbeat_at=timezone.now())


def _dump_database(backup: Backup, progress: Progress) -> tuple[dict[str, Any], dict[str, Any]]:
    engine = database_engine()
    if engine == "postgresql":
        sink = Sink(f"{backup.name}/db.dump", role="db", fmt="pg_custom", progress=progress)
        try:
            info = postgres.dump(pg_connection(), sink.write)
            return sink.commit(), {"engine": engine, **info}
        except BaseException:
            sink.abort()
            raise
    source = Path(connections["default"].settings_dict["NAME"])
    with tempfile.TemporaryDirectory(dir=settings.OPS_BACKUP_TMP_DIR or None) as tmp:
        copy = Path(tmp) / "copy.sqlite3"
        info = sqlite.snapshot(source, copy)
        sink = Sink(f"{backup.name}/db.sqlite3.gz", role="db", fmt="sqlite_gz", progress=progress)
        try:
            packer = gzip_compressor()
            with open(copy, "rb") as fh:
                while chunk := fh.read(storage.READ_CHUNK):
                    sink.write(packer.compress(chunk))
            sink.write(packer.flush())
            return sink.commit(), {"engine": engine, "database": source.name, **info}
        except BaseException:
            sink.abort()
            raise


def _dump_files(backup: Backup, progress: Progress) -> tuple[dict[str, Any], dict[str, Any]]:
    sink = Sink(f"{backup.name}/files.tar.gz", role="files", fmt="tar_gz", progress=progress)
    try:
        summary = files_engine.archive(sink)  # type: ignore[arg-type]
        return sink.commit(), summary
    except BaseException:
        sink.abort()
        raise


def create_backup(
    kind: str = "full", *, actor: Any = None, progress: Progress | None = None
) -> Backup:
    """Back up the database and/or files; returns the completed Backup or raises BackupError.

    Only a fully uploaded and checksummed backup becomes completed; on any failure the row is
    marked failed and the partial objects are removed.
    """
    if kind not in Backup.Kind.values:
        raise BackupError(f"unknown backup kind {kind!r}: use full, db or files")
    storage.backup_storage()  # a misconfigured BACKUP_STORAGE_URL fails here, before any record
    reap_stale()
    actor_name = audit.cli_actor() if actor is None else str(getattr(actor, "username", actor))
    started = timezone.now()
    try:
        with transaction.atomic():  # a savepoint: the caller's transaction survives a refusal
            backup = Backup.objects.create(
                kind=kind,
                started_at=started,
                heartbeat_at=started,
                actor=actor_name,
                hostname=socket.gethostname(),
                pid=os.getpid(),
                storage=_storage_label(),
                app_version=settings.VERSION,
                encrypted=bool(settings.OPS_BACKUP_ENCRYPTION_KEY),
            )
    except IntegrityError:
        running = Backup.objects.filter(status=Backup.Status.RUNNING).first()
        raise BackupError(
            f"backup {running.pk if running else '?'} is still running: wait for it to finish"
        ) from None
    backup.name = _folder(backup)
    Backup.objects.filter(pk=backup.pk).update(name=backup.name)
    clock = time.monotonic()
    beat = _Heartbeat(backup, progress)
    try:
        artifacts: list[dict[str, Any]] = []
        db_info: dict[str, Any] = {}
        files_info: dict[str, Any] = {}
        if kind in ("full", "db"):
            artifact, db_info = _dump_database(backup, beat)
            artifacts.append(artifact)
        if kind in ("full", "files"):
            artifact, files_info = _dump_files(backup, beat)
            artifacts.append(artifact)
        finished = timezone.now()
        duration = time.monotonic() - clock
        document = {
            "format": manifests.FORMAT,
            "version": 1,
            "id": backup.pk,
            "name": backup.name,
            "kind": kind,
            "engine": db_info.get("engine", database_engine()),
            "database": db_info.get("database", ""),
            "server_version": db_info.get("server_version", ""),
            "server_major": db_info.get("server_major"),
            "dump_tool": db_info.get("dump_tool", ""),
            "dump_tool_major": _major(db_info.get("dump_tool", "")),
            "app_version": settings.VERSION,
            "started_at": started.isoformat(),
            "finished_at": finished.isoformat(),
            "duration": round(duration, 3),
            "encrypted": backup.encrypted,
            "artifacts": artifacts,
            "size": sum(a["size"] for a in artifacts),
            "row_counts": db_info.get("row_counts", {}),
            "files": files_info,
        }
        manifest_sha = manifests.write(backup.name, document)
        updated = Backup.objects.filter(pk=backup.pk, status=Backup.Status.RUNNING).update(
            status=Backup.Status.COMPLETED,
            finished_at=finished,
            heartbeat_at=finished,
            duration=duration,
            size=document["size"],
            artifacts=artifacts,
            row_counts=document["row_counts"],
            engine=document["engine"],
            server_version=document["server_version"][:200],
            manifest_sha256=manifest_sha,
        )
    except BaseException as exc:
        _fail(backup, exc, clock)
        if isinstance(exc, BackupError):
            raise
        if isinstance(exc, Exception):
            raise BackupError(f"backup {backup.pk} failed: {_describe(exc)}") from exc
        raise
    if not updated:  # reaped as stale meanwhile: its objects may be gone, never call it done
        raise BackupError(f"backup {backup.pk} was marked failed while it ran: run it again")
    backup.refresh_from_db()
    audit.record(
        "backup.create",
        actor=actor,
        target=f"backup {backup.pk}",
        details={"kind": kind, "size": backup.size, "duration": round(duration, 3)},
    )
    notify(backup_completed, backup_id=backup.pk, kind=kind, size=backup.size, duration=duration)
    return backup


def _major(version_text: str) -> int | None:
    for word in version_text.split():
        head = word.split(".")[0]
        if head.isdigit():
            return int(head)
    return None


def _storage_label() -> str:
    info = storage.describe_storage_url()
    if info["scheme"] == "file":
        return f"file://{info['path']}"
    return f"s3://{info['bucket']}/{info['prefix']}".rstrip("/")


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    password = connections["default"].settings_dict.get("PASSWORD")
    return text.replace(password, "***") if password else text


def _fail(backup: Backup, exc: BaseException, clock: float) -> None:
    reason = _describe(exc) if isinstance(exc, Exception) else "interrupted"
    try:
        storage.delete_folder(backup.name)
    except Exception as cleanup_exc:
        logger.warning("backups: could not remove partial %s: %s", backup.name, cleanup_exc)
    Backup.objects.filter(pk=backup.pk).update(
        status=Backup.Status.FAILED,
        finished_at=timezone.now(),
        duration=time.monotonic() - clock,
        error=reason[:2000],
    )
    logger.error("backups: backup %s failed: %s", backup.pk, reason)
    audit.record(
        "backup.create",
        actor=backup.actor or None,
        target=f"backup {backup.pk}",
        result=SystemLog.Result.FAILURE,
        details={"kind": backup.kind, "reason": reason[:500]},
    )
    notify(backup_failed, backup_id=backup.pk, kind=backup.kind, reason=reason, phase="backup")


def cleanup(*, now: datetime | None = None) -> dict[str, int]:
    """Reap dead runs, then delete failed backup rows older than OPS_BACKUP_FAILED_KEEP_DAYS."""
    now = now or timezone.now()
    reap_stale(now=now)
    cutoff = now - timedelta(days=settings.OPS_BACKUP_FAILED_KEEP_DAYS)
    old = Backup.objects.filter(status=Backup.Status.FAILED, started_at__lt=cutoff)
    for name in old.exclude(name="").values_list("name", flat=True):
        try:
            storage.delete_folder(name)
        except Exception as exc:  # storage down: rows go anyway, leftovers are partial objects
            logger.warning("backups: could not remove %s: %s", name, exc)
    return {"backups.Backup": delete_in_batches(old)}


# Re-exported verbs (their modules import this one, so these come last).
from backups.restore import restore_backup, verify_backup  # noqa: E402
from backups.retention import apply_retention  # noqa: E402
