"""Restore: download, check, then (and only then) touch a database or files.

PostgreSQL restores go into a fresh database that is checked against the manifest's row counts
before it is swapped in, so a failure at any step leaves the target as it was.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.color import no_style
from django.db import DatabaseError, connection, connections, transaction

from backups.catalog import artifact, console_ready, download, resolve
from backups.database import database_engine, live_db_name, pg_connection
from backups.engines import files as files_engine
from backups.engines import postgres, sqlite
from backups.errors import BackupError, PartialRestore
from backups.models import Backup
from backups.pipeline import Progress
from backups.runs import reconcile_after_restore
from backups.signals import backup_failed, notify
from maintenance.state import maintenance_mode
from opsconsole import audit
from opsconsole.models import SystemLog


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
    run = _plan(
        row,
        document,
        target_db,
        database=database,
        files=files,
        trust_paths=trust_storage_paths,
        progress=progress,
    )
    clock = time.monotonic()
    try:
        run.check_compatible()
        with tempfile.TemporaryDirectory(dir=settings.OPS_BACKUP_TMP_DIR or None) as tmp:
            run.download(Path(tmp))  # every archive is checked before anything is touched
            try:
                run.prepare_and_swap(actor, keep_old=keep_old)
            finally:
                run.tidy()
    except BaseException as exc:
        error = run.failed(exc, actor)
        if error is None:
            raise
        raise error from exc
    run.result["seconds"] = round(time.monotonic() - clock, 3)
    with contextlib.suppress(DatabaseError):  # a files-only restore onto an empty database
        audit.record(
            "backup.restore",
            actor=actor,
            target=f"backup {run.backup_id}",
            details={
                "target": run.target,
                "seconds": run.result["seconds"],
                "files": run.staged is not None,
                "database": run.prepared is not None,
            },
        )
    return run.result


def _plan(
    row: Backup | None,
    document: dict[str, Any],
    target_db: str | None,
    *,
    database: bool,
    files: bool,
    trust_paths: bool,
    progress: Progress | None,
) -> _Restore:
    """What this restore will replace, refused early when the backup does not hold it."""
    backup_id = document["id"]
    if files and database and document.get("kind") == "files":
        database = False  # `restore N --files` of a files-only backup: the files are the point
    db_artifact = artifact(document, "db") if database else None
    files_artifact = artifact(document, "files") if files else None
    if database and db_artifact is None:
        if document.get("kind") == "files":
            raise BackupError(f"backup {backup_id} holds only files: add --files")
        raise BackupError(f"backup {backup_id} has no database archive")
    if files and files_artifact is None:
        raise BackupError(f"backup {backup_id} holds no files archive: it is a database backup")
    if files_artifact is not None:
        check_file_targets(document, recorded=row is not None, trust_paths=trust_paths)
    engine = database_engine()
    return _Restore(
        backup_id=backup_id,
        document=document,
        db_artifact=db_artifact,
        files_artifact=files_artifact,
        engine=engine,
        live=target_db is None or (engine == "postgresql" and target_db == live_db_name()),
        target=target_db or live_db_name(),
        progress=progress,
    )


@dataclass
class _Restore:
    """One restore run, step by step: check, download, prepare, swap in, finish (or fail)."""

    backup_id: Any
    document: dict[str, Any]
    db_artifact: dict[str, Any] | None
    files_artifact: dict[str, Any] | None
    engine: str
    live: bool
    target: str
    progress: Progress | None
    result: dict[str, Any] = field(default_factory=dict)
    db_file: Path | None = None
    files_file: Path | None = None
    prepared: _PreparedDatabase | None = None
    staged: files_engine.Staged | None = None

    def __post_init__(self) -> None:
        self.result.update(backup_id=self.backup_id, target=self.target, live=self.live)

    def report(self, phase: str, done: int, total: int | None) -> None:
        if self.progress:
            self.progress(phase, done, total)

    def check_compatible(self) -> None:
        if self.db_artifact is None:
            return
        if self.engine == "postgresql":
            postgres.check_restore_compatible(self.document, pg_connection(self.target))
        else:
            sqlite.check_restore_compatible(self.document)

    def download(self, work: Path) -> None:
        """Fetch and check every archive: a PostgreSQL dump into `work`, a SQLite database
        beside its target (the swap is a rename), the files archive into `work`."""
        if self.db_artifact is not None and self.engine == "postgresql":
            self.db_file = download(self.db_artifact, work / "db.dump", self.progress)
        elif self.db_artifact is not None:
            target_path = Path(self.target)
            stamp = int(time.time() * 1000)
            self.db_file = target_path.parent / f".{target_path.name}.restore-{stamp}"
            download(self.db_artifact, self.db_file, self.progress, gunzip=True)
        if self.files_artifact is not None:
            self.files_file = download(self.files_artifact, work / "files.tar.gz", self.progress)

    def prepare_and_swap(self, actor: Any, *, keep_old: bool) -> None:
        """Under maintenance mode: make every target ready, swap them in, let the old go."""
        # An empty or missing console database (disaster recovery) has no rows to keep and
        # no maintenance switch.
        keep_rows = self.live and console_ready()
        rows = list(Backup.objects.values()) if keep_rows else []
        guard = (
            _maintenance(f"Restoring backup {self.backup_id}", actor)
            if keep_rows
            else contextlib.nullcontext()
        )
        with guard:
            self.prepare()
            self.swap_in(rows if keep_rows else None)
            # Every swap succeeded: only now are the previous copies let go.
            if self.prepared is not None:
                kept = self.prepared.finish(keep_old=keep_old)
                if kept:
                    self.result["kept_database"] = kept
            if self.staged is not None:
                self.staged.finish()

    def prepare(self) -> None:
        """Restore the database into a scratch copy and check it; stage every file root."""
        if self.db_file is not None:
            self.report("restore", 0, None)
            self.prepared = _prepare_database(self.db_file, self.document, self.target, self.live)
            self.result["row_counts"] = self.prepared.counts
        if self.files_file is not None:
            self.report("files", 0, None)
            self.staged = files_engine.stage(self.files_file, self.document)
            self.result["files"] = dict(self.staged.counts)

    def swap_in(self, backup_rows: list[Any] | None) -> None:
        """Every target is ready: swap them in, the database first. `backup_rows` (the live
        console's backup records) are carried into the restored database."""
        prepared, staged = self.prepared, self.staged
        swaps = (1 if prepared else 0) + (len(staged.targets) if staged else 0)
        done = 0
        if prepared is not None:
            self.report("swap", done, swaps)
            prepared.swap_in()
            done += 1
            if backup_rows is not None:
                _carry_backup_rows(backup_rows)
            if self.live:
                reconcile_after_restore()
        if staged is not None:
            swapped_roots = staged.replaced

            def before_each(label: str, root: Path) -> None:
                self.report("swap", done + len(swapped_roots), swaps)

            staged.swap_in(before_each)

    def tidy(self) -> None:
        """Drop what was prepared and never swapped in, and the downloaded SQLite copy."""
        if self.prepared is not None:
            self.prepared.discard()
        if self.staged is not None:
            self.staged.discard()
        if self.db_file is not None and self.engine == "sqlite":
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{self.db_file}{suffix}").unlink(missing_ok=True)

    def failed(self, exc: BaseException, actor: Any) -> BaseException | None:
        """Announce and audit the failure; the error to raise instead of `exc`, if any."""
        reason = (str(exc) or type(exc).__name__) if isinstance(exc, Exception) else "interrupted"
        replaced, untouched = self.what_changed()
        notify(
            backup_failed,
            backup_id=self.backup_id,
            kind=self.document.get("kind", ""),
            reason=reason,
            phase="restore",
        )
        with contextlib.suppress(Exception):
            audit.record(
                "backup.restore",
                actor=actor,
                target=f"backup {self.backup_id}",
                result=SystemLog.Result.FAILURE,
                details={"target": self.target, "reason": reason[:500], "replaced": replaced},
            )
        if replaced:
            message = (
                f"restore of backup {self.backup_id} failed after replacing {'; '.join(replaced)}"
                + (f"; not replaced: {', '.join(untouched)}" if untouched else "")
                + f": {reason}"
            )
            return PartialRestore(message, replaced=replaced)
        if isinstance(exc, BackupError) or not isinstance(exc, Exception):
            return None
        return BackupError(f"restore of backup {self.backup_id} failed: {reason}")

    def what_changed(self) -> tuple[list[str], list[str]]:
        """In words: what a failed restore replaced (and where the previous copy is), what not."""
        replaced: list[str] = []
        untouched: list[str] = []
        prepared, staged = self.prepared, self.staged
        if prepared is not None:
            if prepared.swapped:
                kept = prepared.old_name or ", ".join(map(str, prepared.old_files))
                replaced.append(
                    f"the database {self.target}"
                    + (f" (the previous one is kept as {kept})" if kept else "")
                )
            else:
                untouched.append(f"the database {self.target}")
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


def configured_file_roots() -> set[Path]:
    """Where file restores may write: MEDIA_ROOT and OPS_BACKUP_PATHS, as configured now."""
    raw: list[str] = [str(settings.MEDIA_ROOT or ""), *map(str, settings.OPS_BACKUP_PATHS)]
    return {Path(path).resolve() for path in raw if path}


def _carry_backup_rows(rows: list[Any]) -> None:
    """After replacing the live database, keep the console's knowledge of every backup."""
    with transaction.atomic():
        Backup.objects.all().delete()
        Backup.objects.bulk_create([Backup(**row) for row in rows])
        with connection.cursor() as cursor:
            for statement in connection.ops.sequence_reset_sql(no_style(), [Backup]):
                cursor.execute(statement)


def _maintenance(message: str, actor: Any) -> Any:
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
    db_file: Path, document: dict[str, Any], target: str, live: bool
) -> _PreparedDatabase:
    if database_engine() == "postgresql":
        scratch, counts = postgres.restore_into_scratch(db_file, document, pg_connection(target))
        return _PreparedDatabase(target=target, live=live, counts=counts, scratch=scratch)
    counts = sqlite.check_copy(db_file, document)
    return _PreparedDatabase(target=target, live=live, counts=counts, copy=db_file)
