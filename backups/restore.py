"""Restore and verification: download, check, then (and only then) touch a database or files.

PostgreSQL restores go into a fresh database that is checked against the manifest's row counts
before it is swapped in, so a failure at any step leaves the target as it was.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.color import no_style
from django.db import DatabaseError, connection, connections, transaction
from django.utils import timezone

from backups import manifest as manifests
from backups.common import database_engine, notify, pg_connection
from backups.crypto import EncryptionError
from backups.engines import files as files_engine
from backups.engines import postgres, sqlite
from backups.errors import BackupError, PartialRestore
from backups.models import Backup
from backups.pipeline import ChecksumMismatch, Progress, fetch
from backups.signals import backup_failed, backup_verified
from opsconsole import audit
from opsconsole.models import SystemLog

logger = logging.getLogger(__name__)


def resolve(ref: int | str | None, *, need: str = "db") -> tuple[Backup | None, dict[str, Any]]:
    """The backup row (if the console knows it) and its manifest, for an id or "latest"."""
    ready = console_ready()
    if ref is None or str(ref) == "latest":
        row = Backup.objects.latest_restorable(need) if ready else None
        if row is None:
            found = manifests.find(None)
            if found is None:
                raise BackupError("there is no completed backup: run `manage.py backup` first")
            return None, found
    else:
        try:
            backup_id = int(ref)
        except (TypeError, ValueError):
            raise BackupError(f"{ref!r} is not a backup id: give a number or 'latest'") from None
        row = Backup.objects.filter(pk=backup_id).first() if ready else None
        if row is None:
            found = manifests.find(backup_id)
            if found is None:
                raise BackupError(
                    f"there is no backup {backup_id}: see `manage.py listbackups` for the ids"
                )
            return None, found
        if not row.is_restorable:
            raise BackupError(
                f"backup {row.pk} is {row.status} and cannot be used: pick a completed one "
                "(`manage.py listbackups`)"
            )
    document = manifests.read(row.name, expect_sha256=row.manifest_sha256)
    if document is None:
        raise BackupError(
            f"the manifest of backup {row.pk} is missing from {row.storage}: the backup is "
            "incomplete in storage; pick another one"
        )
    # The console's record is the authority on checksums; the manifest only travels along.
    document["artifacts"] = row.artifacts
    return row, document


def console_ready() -> bool:
    """False when the console's own database is missing or empty (disaster recovery): then
    backups are found from their manifests in storage, and there is no maintenance row to set."""
    try:
        Backup.objects.exists()
    except DatabaseError:
        connection.close()
        return False
    return True


def _artifact(document: dict[str, Any], role: str) -> dict[str, Any] | None:
    return next((a for a in document.get("artifacts", []) if a.get("role") == role), None)


def _fetch(artifact: dict[str, Any], dest: Path, progress: Progress | None, **kw: Any) -> Path:
    try:
        return fetch(artifact, dest, progress=progress, **kw)
    except (ChecksumMismatch, EncryptionError) as exc:
        raise BackupError(str(exc)) from None


def _live_db_name() -> str:
    return str(connection.settings_dict["NAME"])


def _carry_backup_rows(rows: list[Any]) -> None:
    """After replacing the live database, keep the console's knowledge of every backup."""
    with transaction.atomic():
        Backup.objects.all().delete()
        Backup.objects.bulk_create([Backup(**row) for row in rows])
        with connection.cursor() as cursor:
            for statement in connection.ops.sequence_reset_sql(no_style(), [Backup]):
                cursor.execute(statement)


def configured_file_roots() -> set[Path]:
    """Where file restores may write: MEDIA_ROOT and OPS_BACKUP_PATHS, as configured now."""
    raw: list[str] = [str(settings.MEDIA_ROOT or ""), *map(str, settings.OPS_BACKUP_PATHS)]
    return {Path(path).resolve() for path in raw if path}


def check_file_targets(document: dict[str, Any], *, recorded: bool, trust_paths: bool) -> None:
    """Refuse a files restore whose manifest points outside the configured roots, and one
    whose paths come from storage alone (no console record to check the manifest against)
    unless the operator has read them and said so."""
    backup_id = document.get("id")
    roots = (document.get("files") or {}).get("roots") or {}
    targets = [str(info.get("path", "")) for info in roots.values() if isinstance(info, dict)]
    allowed = configured_file_roots()
    outside = [path for path in targets if not path or Path(path).resolve() not in allowed]
    if outside:
        raise BackupError(
            f"backup {backup_id} would write files to {', '.join(outside) or '(no path)'}, "
            "which is not a configured root: restores write only to MEDIA_ROOT and "
            "OPS_BACKUP_PATHS; configure the path there to restore it"
        )
    if not recorded and not trust_paths:
        raise BackupError(
            f"the console has no record of backup {backup_id}, so its file paths come from "
            f"storage alone: it would replace {', '.join(targets)}; check them and run again "
            "with --trust-storage-paths"
        )


def restore_backup(
    ref: int | str | None = "latest",
    *,
    target_db: str | None = None,
    database: bool = True,
    files: bool = False,
    keep_old: bool = False,
    trust_storage_paths: bool = False,
    actor: Any = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Restore a backup's database (into `target_db`, default the live one) and/or its files.

    File roots come from the manifest; they must be configured roots, and when the console has
    no record of the backup (disaster recovery) the caller must pass `trust_storage_paths`.

    Everything is made ready first: the database restored into a scratch database (or a
    SQLite copy) and checked, every file root extracted beside its target. Only then are the
    targets swapped in, and the previous database and trees are kept until every swap has
    succeeded. A failure after a swap raises PartialRestore, naming what was replaced.
    """
    row, document = resolve(ref, need="files" if files and not database else "db")
    backup_id = document["id"]
    if files and database and document.get("kind") == "files":
        database = False  # `restore N --files` of a files-only backup: the files are the point
    db_artifact = _artifact(document, "db") if database else None
    files_artifact = _artifact(document, "files") if files else None
    if database and db_artifact is None:
        if document.get("kind") == "files":
            raise BackupError(f"backup {backup_id} holds only files: add --files")
        raise BackupError(f"backup {backup_id} has no database archive")
    if files and files_artifact is None:
        raise BackupError(f"backup {backup_id} holds no files archive: it is a database backup")
    if files_artifact is not None:
        check_file_targets(document, recorded=row is not None, trust_paths=trust_storage_paths)
    engine = database_engine()
    live = target_db is None or (engine == "postgresql" and target_db == _live_db_name())
    target = target_db or _live_db_name()
    clock = time.monotonic()
    result: dict[str, Any] = {"backup_id": backup_id, "target": target, "live": live}
    prepared: _PreparedDatabase | None = None
    staged: files_engine.Staged | None = None
    try:
        if db_artifact is not None:
            if engine == "postgresql":
                postgres.check_restore_compatible(document, pg_connection(target))
            else:
                sqlite.check_restore_compatible(document)
        with tempfile.TemporaryDirectory(dir=settings.OPS_BACKUP_TMP_DIR or None) as tmp:
            work = Path(tmp)
            # Everything is downloaded and checked before anything is touched.
            db_file = None
            if db_artifact is not None and engine == "postgresql":
                db_file = _fetch(db_artifact, work / "db.dump", progress)
            elif db_artifact is not None:
                target_path = Path(target)
                stamp = int(time.time() * 1000)
                db_file = target_path.parent / f".{target_path.name}.restore-{stamp}"
                _fetch(db_artifact, db_file, progress, gunzip=True)
            files_file = (
                _fetch(files_artifact, work / "files.tar.gz", progress) if files_artifact else None
            )
            try:
                # An empty or missing console database (disaster recovery) has no rows to keep
                # and no maintenance switch.
                keep_rows = live and console_ready()
                rows = list(Backup.objects.values()) if keep_rows else []
                guard = (
                    _maintenance(f"Restoring backup {backup_id}", actor)
                    if keep_rows
                    else contextlib.nullcontext()
                )
                with guard:
                    if db_file is not None:
                        prepared = _prepare_database(db_file, document, target, live, progress)
                        result["row_counts"] = prepared.counts
                    if files_file is not None:
                        if progress:
                            progress("files", 0, None)
                        staged = files_engine.stage(files_file, document)
                        result["files"] = dict(staged.counts)
                    # Every target is ready: swap them in, the database first.
                    swaps = (1 if prepared else 0) + (len(staged.targets) if staged else 0)
                    done = 0
                    if prepared is not None:
                        if progress:
                            progress("swap", done, swaps)
                        prepared.swap_in()
                        done += 1
                        if keep_rows:
                            _carry_backup_rows(rows)
                        if live:
                            from backups.services import reconcile_after_restore

                            reconcile_after_restore()
                    if staged is not None:
                        swapped_roots = staged.replaced

                        def before_each(label: str, root: Path) -> None:
                            if progress:
                                progress("swap", done + len(swapped_roots), swaps)

                        staged.swap_in(before_each)
                    # Every swap succeeded: only now are the previous copies let go.
                    if prepared is not None:
                        kept = prepared.finish(keep_old=keep_old)
                        if kept:
                            result["kept_database"] = kept
                    if staged is not None:
                        staged.finish()
            finally:
                if prepared is not None:
                    prepared.discard()
                if staged is not None:
                    staged.discard()
                if db_file is not None and engine == "sqlite":
                    for suffix in ("", "-wal", "-shm", "-journal"):
                        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    except BaseException as exc:
        reason = (str(exc) or type(exc).__name__) if isinstance(exc, Exception) else "interrupted"
        replaced, untouched = _what_changed(prepared, staged, target)
        notify(
            backup_failed,
            backup_id=backup_id,
            kind=document.get("kind", ""),
            reason=reason,
            phase="restore",
        )
        with contextlib.suppress(Exception):
            audit.record(
                "backup.restore",
                actor=actor,
                target=f"backup {backup_id}",
                result=SystemLog.Result.FAILURE,
                details={"target": target, "reason": reason[:500], "replaced": replaced},
            )
        if replaced:
            message = (
                f"restore of backup {backup_id} failed after replacing {'; '.join(replaced)}"
                + (f"; not replaced: {', '.join(untouched)}" if untouched else "")
                + f": {reason}"
            )
            raise PartialRestore(message, replaced=replaced) from exc
        if isinstance(exc, BackupError) or not isinstance(exc, Exception):
            raise
        raise BackupError(f"restore of backup {backup_id} failed: {reason}") from exc
    result["seconds"] = round(time.monotonic() - clock, 3)
    with contextlib.suppress(DatabaseError):  # a files-only restore onto an empty database
        audit.record(
            "backup.restore",
            actor=actor,
            target=f"backup {backup_id}",
            details={
                "target": target,
                "seconds": result["seconds"],
                "files": staged is not None,
                "database": prepared is not None,
            },
        )
    return result


def _what_changed(
    prepared: _PreparedDatabase | None, staged: files_engine.Staged | None, target: str
) -> tuple[list[str], list[str]]:
    """In words: what a failed restore replaced (and where the previous copy is), what not."""
    replaced: list[str] = []
    untouched: list[str] = []
    if prepared is not None:
        if prepared.swapped:
            kept = prepared.old_name or ", ".join(map(str, prepared.old_files))
            replaced.append(
                f"the database {target}"
                + (f" (the previous one is kept as {kept})" if kept else "")
            )
        else:
            untouched.append(f"the database {target}")
    if staged is not None:
        for label, root in staged.targets.items():
            if label in staged.replaced:
                kept_tree = staged.kept.get(label)
                replaced.append(
                    f"the files in {root}"
                    + (f" (the previous ones are kept in {kept_tree})" if kept_tree else "")
                )
            else:
                untouched.append(str(root))
    return replaced, untouched


def _maintenance(message: str, actor: Any) -> Any:
    from maintenance.state import maintenance_mode

    name = actor if isinstance(actor, str) else getattr(actor, "username", None) or "restore"
    return maintenance_mode(message=message, actor=name)


@dataclass
class _PreparedDatabase:
    """A restored, checked copy of the database, waiting to replace the target."""

    target: str
    live: bool
    counts: dict[str, int]
    scratch: str = ""  # PostgreSQL: the scratch database
    copy: Path | None = None  # SQLite: the restored file beside the target
    swapped: bool = False
    old_name: str | None = None  # PostgreSQL: the previous database, renamed
    old_files: list[Path] = field(default_factory=list)  # SQLite: the previous file set

    def swap_in(self) -> None:
        if self.copy is None:
            if self.live:
                connections.close_all()
            conn = pg_connection(self.target)
            self.old_name = postgres.swap_in(conn, self.scratch, keep_old=True)
        else:
            before = connections.close_all if self.live else None
            self.old_files = sqlite.swap_in(
                self.copy, Path(self.target), before_swap=before, keep_old=True
            )
        self.swapped = True

    def finish(self, *, keep_old: bool) -> str | None:
        """Let the previous database go (PostgreSQL keeps it with `keep_old`)."""
        if self.old_name and not keep_old:
            postgres.drop_database(pg_connection(self.target), self.old_name)
            self.old_name = None
        for path in self.old_files:
            path.unlink(missing_ok=True)
        self.old_files = []
        return self.old_name

    def discard(self) -> None:
        """Drop the scratch copy if it was never swapped in."""
        if not self.swapped and self.scratch:
            with contextlib.suppress(Exception):
                postgres.drop_database(pg_connection(self.target), self.scratch)


def _prepare_database(
    db_file: Path, document: dict[str, Any], target: str, live: bool, progress: Progress | None
) -> _PreparedDatabase:
    if progress:
        progress("restore", 0, None)
    if database_engine() == "postgresql":
        scratch, counts = postgres.restore_into_scratch(db_file, document, pg_connection(target))
        return _PreparedDatabase(target=target, live=live, counts=counts, scratch=scratch)
    counts = sqlite.check_copy(db_file, document)
    return _PreparedDatabase(target=target, live=live, counts=counts, copy=db_file)


def verify_backup(backup_id: int | None = None, *, progress: Progress | None = None) -> Backup:
    """Restore a backup into a scratch database, check it, drop it; record the time taken.

    `None` verifies the newest completed backup. Failures are recorded on the backup (and
    announced with backup_failed, phase "verify"); the backup is returned either way.
    """
    if backup_id is None:
        backup = Backup.objects.latest_restorable()
        if backup is None:
            raise BackupError("there is no completed backup to verify: run `manage.py backup`")
    else:
        found = Backup.objects.filter(pk=backup_id).first()
        if found is None:
            raise BackupError(f"there is no backup {backup_id}: see `manage.py listbackups`")
        backup = found
    clock = time.monotonic()
    try:
        if not backup.is_restorable:
            raise BackupError(f"backup {backup.pk} is {backup.status}: only completed ones verify")
        _, document = resolve(backup.pk)
        with tempfile.TemporaryDirectory(dir=settings.OPS_BACKUP_TMP_DIR or None) as tmp:
            db_artifact = _artifact(document, "db")
            if db_artifact is not None:
                if document.get("engine") != database_engine():
                    raise BackupError(
                        f"backup {backup.pk} holds a {document.get('engine')} database; this "
                        f"console runs on {database_engine()} and cannot restore it to check"
                    )
                if database_engine() == "postgresql":
                    path = _fetch(db_artifact, Path(tmp) / "db.dump", progress)
                    conn = pg_connection()
                    scratch, _ = postgres.restore_into_scratch(
                        path, document, conn, purpose="verify"
                    )
                    postgres.drop_database(conn, scratch)
                else:
                    path = _fetch(db_artifact, Path(tmp) / "db.sqlite3", progress, gunzip=True)
                    sqlite.check_copy(path, document)
                path.unlink()
            files_artifact = _artifact(document, "files")
            if files_artifact is not None:
                path = _fetch(files_artifact, Path(tmp) / "files.tar.gz", progress)
                found_files = files_engine.count_members(path)
                expected = int((document.get("files") or {}).get("files", 0))
                if found_files != expected:
                    raise BackupError(
                        f"the files archive holds {found_files} files, the manifest says {expected}"
                    )
    except Exception as exc:
        reason = str(exc) or type(exc).__name__
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
