"""SQLite: the online backup API to a copy, checked with PRAGMA integrity_check; restore is an
atomic file swap that also moves the old -wal/-shm files out of the way."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backups.engines.carried import MAINTENANCE_COLUMNS, MAINTENANCE_TABLE
from backups.errors import BackupError


def _integrity(conn: sqlite3.Connection) -> None:
    rows = conn.execute("PRAGMA integrity_check").fetchall()
    if [r[0] for r in rows] != ["ok"]:
        detail = "; ".join(str(r[0]) for r in rows[:3])
        raise BackupError(f"the SQLite copy fails PRAGMA integrity_check: {detail}")


def row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = [
        str(r[0])
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
    ]
    counts = {}
    for name in names:
        quoted = '"' + name.replace('"', '""') + '"'
        counts[name] = int(conn.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0])  # noqa: S608
    return counts


def snapshot(source: Path, copy: Path) -> dict[str, Any]:
    """Copy a live database with the backup API (consistent with concurrent writers)."""
    if not source.exists():
        raise BackupError(f"the SQLite database {source} does not exist")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(copy)
    try:
        src.backup(dst, pages=-1)
        version = sqlite3.sqlite_version
        _integrity(dst)
        counts = row_counts(dst)
    finally:
        dst.close()
        src.close()
    return {"server_version": f"SQLite {version}", "server_major": 3, "row_counts": counts}


def check_copy(path: Path, manifest: dict[str, Any]) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        try:
            # A copy of a WAL database is in WAL mode too; switching it back means checking
            # it leaves no -wal/-shm files behind (Django turns WAL on again when it connects).
            conn.execute("PRAGMA journal_mode=DELETE")
            _integrity(conn)
            found = row_counts(conn)
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"the restored file is not a valid SQLite database: {exc}") from None
    finally:
        conn.close()
    expected = manifest.get("row_counts") or {}
    wrong = {k: (v, found.get(k)) for k, v in expected.items() if found.get(k) != v}
    if wrong:
        sample = ", ".join(
            f"{k} has {f} rows, expected {e}" for k, (e, f) in list(wrong.items())[:3]
        )
        raise BackupError(f"the restored database does not match the manifest: {sample}")
    return found


def check_restore_compatible(manifest: dict[str, Any]) -> None:
    if manifest.get("engine") != "sqlite":
        raise BackupError(
            f"backup {manifest.get('id')} holds a {manifest.get('engine')} database and the "
            "target is SQLite: restoring across engines is not supported; pick a SQLite backup"
        )


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def swap_in(
    restored: Path,
    target: Path,
    *,
    before_swap: Callable[[], None] | None = None,
    keep_old: bool = False,
) -> list[Path]:
    """Replace `target` by `restored` (same directory), with its -wal and -shm moved aside.

    A stale -wal next to the restored file would be replayed onto it and corrupt it, so the
    live file and both sidecars go together; the old set is removed once the new file is in,
    or, with `keep_old`, left aside and returned (the caller removes it when all is done).
    """
    if restored.parent.resolve() != target.parent.resolve():
        raise ValueError("the restored file must sit in the target's directory")
    carry_maintenance(target, restored)
    stamp = f"old-{int(time.time() * 1000)}"
    moved: list[tuple[Path, Path]] = []
    if before_swap:
        before_swap()
    try:
        for suffix in ("", "-wal", "-shm", "-journal"):
            live = Path(f"{target}{suffix}")
            if live.exists():
                aside = Path(f"{target}.{stamp}{suffix}")
                os.replace(live, aside)
                moved.append((aside, live))
        os.replace(restored, target)
        _fsync_dir(target.parent)
    except BaseException:
        for aside, live in reversed(moved):
            with contextlib.suppress(OSError):
                os.replace(aside, live)
        raise
    if keep_old:
        return [aside for aside, _ in moved]
    for aside, _ in moved:
        aside.unlink(missing_ok=True)
    return []


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", [name])
    return found.fetchone() is not None


def carry_maintenance(target: Path, restored: Path) -> None:
    """Copy the target's maintenance-mode row into the restored file (see postgres.swap_in)."""
    if not target.exists():
        return
    cols = ", ".join(MAINTENANCE_COLUMNS)
    src = sqlite3.connect(target, timeout=30)
    try:
        if not _has_table(src, MAINTENANCE_TABLE):
            return
        row = src.execute(f"SELECT {cols} FROM {MAINTENANCE_TABLE} WHERE singleton = 1").fetchone()  # noqa: S608
    finally:
        src.close()
    dst = sqlite3.connect(restored)
    try:
        if not _has_table(dst, MAINTENANCE_TABLE):
            return
        if row is None:
            dst.execute(f"UPDATE {MAINTENANCE_TABLE} SET is_down = 0, window_id = NULL")  # noqa: S608
        else:
            marks = ", ".join("?" for _ in MAINTENANCE_COLUMNS)
            sets = ", ".join(f"{c} = excluded.{c}" for c in MAINTENANCE_COLUMNS)
            upsert = (
                f"INSERT INTO {MAINTENANCE_TABLE} (singleton, window_id, {cols}) "  # noqa: S608
                f"VALUES (1, NULL, {marks}) "
                f"ON CONFLICT (singleton) DO UPDATE SET window_id = NULL, {sets}"
            )
            dst.execute(upsert, row)
        dst.commit()
    finally:
        dst.close()
