"""The backup verbs: create, verify and clean up.

Views, tasks and commands all call these. Restore lives in `backups.restore`, retention in
`backups.retention`, the bookkeeping of running backups in `backups.runs`.
"""

from __future__ import annotations

import logging
import os
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
from backups.catalog import artifact, download, resolve
from backups.database import database_engine, describe, pg_connection
from backups.engines import files as files_engine
from backups.engines import postgres, sqlite
from backups.errors import BackupError
from backups.models import Backup
from backups.pipeline import Progress, Sink, gzip_compressor
from backups.runs import Heartbeat, reap_stale
from backups.signals import backup_completed, backup_failed, backup_verified, notify
from opsconsole import __version__, audit
from opsconsole.models import SystemLog
from opsconsole.retention import delete_in_batches

logger = logging.getLogger(__name__)


# --- create -------------------------------------------------------------------------------
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
    backup = _start_run(kind, actor)
    clock = time.monotonic()
    try:
        artifacts, db_info, files_info = _dump(backup, Heartbeat(backup, progress))
        finished, duration = timezone.now(), time.monotonic() - clock
        document = _manifest(backup, artifacts, db_info, files_info, finished, duration)
        completed = _record_completed(backup, document, finished, duration)
    except BaseException as exc:
        _fail(backup, exc, clock)
        if isinstance(exc, Exception) and not isinstance(exc, BackupError):
            raise BackupError(f"backup {backup.pk} failed: {describe(exc)}") from exc
        raise
    if not completed:  # reaped as stale meanwhile: its objects may be gone, never call it done
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


def _start_run(kind: str, actor: Any) -> Backup:
    """The running backup's row; refused while another backup runs (a unique constraint)."""
    actor_name = audit.cli_actor() if actor is None else str(getattr(actor, "username", actor))
    started = timezone.now()
    try:
        with transaction.atomic():  # a savepoint: the caller's transaction survives a refusal
            backup = Backup.objects.create(
                kind=kind,
                started_at=started,
                heartbeat_at=started,
                actor=actor_name,
                hostname=settings.OPS_HOST_NAME,
                pid=os.getpid(),
                storage=_storage_label(),
                app_version=__version__,
                encrypted=bool(settings.OPS_BACKUP_ENCRYPTION_KEY),
            )
    except IntegrityError:
        running = Backup.objects.filter(status=Backup.Status.RUNNING).first()
        raise BackupError(
            f"backup {running.pk if running else '?'} is still running: wait for it to finish"
        ) from None
    backup.name = f"{backup.started_at:%Y%m%dT%H%M%SZ}-{backup.pk}-{backup.kind}"
    Backup.objects.filter(pk=backup.pk).update(name=backup.name)
    return backup


def _dump(
    backup: Backup, progress: Progress
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """Write the backup's artifacts: (their records, what the database dump found, and what
    the files archive found)."""
    artifacts: list[dict[str, Any]] = []
    db_info: dict[str, Any] = {}
    files_info: dict[str, Any] = {}
    if backup.kind in ("full", "db"):
        record, db_info = _dump_database(backup, progress)
        artifacts.append(record)
    if backup.kind in ("full", "files"):
        record, files_info = _dump_files(backup, progress)
        artifacts.append(record)
    return artifacts, db_info, files_info


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


def _manifest(
    backup: Backup,
    artifacts: list[dict[str, Any]],
    db_info: dict[str, Any],
    files_info: dict[str, Any],
    finished: datetime,
    duration: float,
) -> dict[str, Any]:
    """The manifest document: enough to restore the backup without the console's database."""
    return {
        "format": manifests.FORMAT,
        "version": 1,
        "id": backup.pk,
        "name": backup.name,
        "kind": backup.kind,
        "engine": db_info.get("engine", database_engine()),
        "database": db_info.get("database", ""),
        "server_version": db_info.get("server_version", ""),
        "server_major": db_info.get("server_major"),
        "dump_tool": db_info.get("dump_tool", ""),
        "dump_tool_major": _major(db_info.get("dump_tool", "")),
        "app_version": __version__,
        "started_at": backup.started_at.isoformat(),
        "finished_at": finished.isoformat(),
        "duration": round(duration, 3),
        "encrypted": backup.encrypted,
        "artifacts": artifacts,
        "size": sum(a["size"] for a in artifacts),
        "row_counts": db_info.get("row_counts", {}),
        "files": files_info,
    }


def _record_completed(
    backup: Backup, document: dict[str, Any], finished: datetime, duration: float
) -> bool:
    """Write the manifest (last: it marks the backup complete in storage), then the row.
    False when the row was no longer running (reaped as stale meanwhile)."""
    manifest_sha = manifests.write(backup.name, document)
    updated = Backup.objects.filter(pk=backup.pk, status=Backup.Status.RUNNING).update(
        status=Backup.Status.COMPLETED,
        finished_at=finished,
        heartbeat_at=finished,
        duration=duration,
        size=document["size"],
        artifacts=document["artifacts"],
        row_counts=document["row_counts"],
        engine=document["engine"],
        server_version=document["server_version"][:200],
        manifest_sha256=manifest_sha,
    )
    return bool(updated)


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


def _fail(backup: Backup, exc: BaseException, clock: float) -> None:
    reason = describe(exc) if isinstance(exc, Exception) else "interrupted"
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


# --- verify -------------------------------------------------------------------------------
def verify_backup(backup_id: int | None = None, *, progress: Progress | None = None) -> Backup:
    """Restore a backup into a scratch database, check it, drop it; record the time taken.

    `None` verifies the newest completed backup. Failures are recorded on the backup (and
    announced with backup_failed, phase "verify"); the backup is returned either way.
    """
    backup = _backup_to_verify(backup_id)
    clock = time.monotonic()
    try:
        if not backup.is_restorable:
            raise BackupError(f"backup {backup.pk} is {backup.status}: only completed ones verify")
        _, document = resolve(backup.pk)
        with tempfile.TemporaryDirectory(dir=settings.OPS_BACKUP_TMP_DIR or None) as tmp:
            _verify_database(backup, document, Path(tmp), progress)
            _verify_files(document, Path(tmp), progress)
    except Exception as exc:
        _record_verify_failure(backup, str(exc) or type(exc).__name__)
        backup.refresh_from_db()
        return backup
    seconds = time.monotonic() - clock
    Backup.objects.filter(pk=backup.pk, status__in=Backup.RESTORABLE).update(
        status=Backup.Status.VERIFIED,
        verified_at=timezone.now(),
        restore_seconds=seconds,
        verify_error="",
    )
    audit.record(
        "backup.verify",
        target=f"backup {backup.pk}",
        details={"restore_seconds": round(seconds, 3)},
    )
    notify(backup_verified, backup_id=backup.pk, kind=backup.kind, restore_seconds=seconds)
    backup.refresh_from_db()
    return backup


def _backup_to_verify(backup_id: int | None) -> Backup:
    if backup_id is None:
        backup = Backup.objects.latest_restorable()
        if backup is None:
            raise BackupError("there is no completed backup to verify: run `manage.py backup`")
        return backup
    found = Backup.objects.filter(pk=backup_id).first()
    if found is None:
        raise BackupError(f"there is no backup {backup_id}: see `manage.py listbackups`")
    return found


def _verify_database(
    backup: Backup, document: dict[str, Any], work: Path, progress: Progress | None
) -> None:
    """Restore the database archive into a scratch database (or a SQLite copy), check its
    row counts against the manifest, and drop it again."""
    db_artifact = artifact(document, "db")
    if db_artifact is None:
        return
    if document.get("engine") != database_engine():
        raise BackupError(
            f"backup {backup.pk} holds a {document.get('engine')} database; this "
            f"console runs on {database_engine()} and cannot restore it to check"
        )
    if database_engine() == "postgresql":
        path = download(db_artifact, work / "db.dump", progress)
        conn = pg_connection()
        scratch, _ = postgres.restore_into_scratch(path, document, conn, purpose="verify")
        postgres.drop_database(conn, scratch)
    else:
        path = download(db_artifact, work / "db.sqlite3", progress, gunzip=True)
        sqlite.check_copy(path, document)
    path.unlink()


def _verify_files(document: dict[str, Any], work: Path, progress: Progress | None) -> None:
    """Read the files archive through and count its files against the manifest."""
    files_artifact = artifact(document, "files")
    if files_artifact is None:
        return
    path = download(files_artifact, work / "files.tar.gz", progress)
    found_files = files_engine.count_members(path)
    expected = int((document.get("files") or {}).get("files", 0))
    if found_files != expected:
        raise BackupError(
            f"the files archive holds {found_files} files, the manifest says {expected}"
        )


def _record_verify_failure(backup: Backup, reason: str) -> None:
    Backup.objects.filter(pk=backup.pk).update(
        verify_failed_at=timezone.now(), verify_error=reason[:2000]
    )
    logger.error("backups: verification of backup %s failed: %s", backup.pk, reason)
    audit.record(
        "backup.verify",
        target=f"backup {backup.pk}",
        result=SystemLog.Result.FAILURE,
        details={"reason": reason[:500]},
    )
    notify(backup_failed, backup_id=backup.pk, kind=backup.kind, reason=reason, phase="verify")


# --- cleanup ------------------------------------------------------------------------------
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
