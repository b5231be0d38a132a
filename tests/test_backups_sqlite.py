"""The SQLite path: online backup API + integrity check, atomic swap that handles -wal/-shm."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from backups import services
from backups.engines import sqlite as sqlite_engine
from backups.errors import BackupError
from backups.models import Backup
from backups.restore import restore_backup
from tests.backups_support import on_postgres

pytestmark = pytest.mark.skipif(on_postgres(), reason="runs on the SQLite test database")


def rows(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT id, username, email FROM auth_user ORDER BY id").fetchall()
    finally:
        conn.close()


def live_copy_with_changes(backup: Backup, target: Path) -> None:
    """A target database in WAL mode with changes still in its -wal file."""
    restore_backup(backup.pk, target_db=str(target))
    conn = sqlite3.connect(target)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("DELETE FROM auth_user WHERE username LIKE 'user1%'")
    conn.execute("UPDATE auth_user SET email = 'changed@example.com'")
    conn.commit()
    assert Path(f"{target}-wal").exists()
    # The connection stays open, as a crashed process would have left it.
    live_copy_with_changes.keep = conn  # type: ignore[attr-defined]


def test_it_backs_up_with_the_online_api_and_restores_over_a_wal_database(
    backup_dirs: dict[str, Path], transactional_db: Any
) -> None:
    for n in range(20):
        User.objects.create_user(f"user{n}", f"user{n}@example.com")
    backup = services.create_backup("db")
    assert backup.engine == "sqlite"
    assert backup.row_counts["auth_user"] == 20
    assert backup.artifact("db")["format"] == "sqlite_gz"  # type: ignore[index]
    target = backup_dirs["tmp"] / "target.sqlite3"
    live_copy_with_changes(backup, target)
    original = [(u.id, u.username, u.email) for u in User.objects.order_by("id")]
    assert rows(target) != original
    live_copy_with_changes.keep.close()  # type: ignore[attr-defined]
    restore_backup(backup.pk, target_db=str(target))
    assert rows(target) == original
    assert not Path(f"{target}-wal").exists() or Path(f"{target}-wal").stat().st_size == 0
    leftovers = [p.name for p in backup_dirs["tmp"].iterdir() if ".old-" in p.name]
    assert leftovers == []
    conn = sqlite3.connect(target)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


def test_it_refuses_a_flipped_byte_and_leaves_the_target_alone(
    backup_dirs: dict[str, Path], transactional_db: Any
) -> None:
    User.objects.create_user("alice", "alice@example.com")
    backup = services.create_backup("db")
    target = backup_dirs["tmp"] / "target.sqlite3"
    restore_backup(backup.pk, target_db=str(target))
    before = target.read_bytes()
    path = backup_dirs["store"] / backup.artifact("db")["name"]  # type: ignore[index]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(BackupError, match="fails its checksum"):
        restore_backup(backup.pk, target_db=str(target))
    assert target.read_bytes() == before
    assert sorted(p.name for p in backup_dirs["tmp"].iterdir() if "target" in p.name) == [
        "target.sqlite3"
    ]


def test_it_refuses_a_postgres_backup_on_sqlite(
    backup_dirs: dict[str, Path], transactional_db: Any
) -> None:
    with pytest.raises(BackupError, match="restoring across engines is not supported"):
        sqlite_engine.check_restore_compatible({"id": 3, "engine": "postgresql"})


def test_a_copy_that_fails_the_integrity_check_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    with pytest.raises(BackupError, match="not a valid SQLite database|integrity_check"):
        sqlite_engine.check_copy(bad, {"row_counts": {}})


def test_verification_checks_the_sqlite_copy(
    backup_dirs: dict[str, Path], transactional_db: Any
) -> None:
    User.objects.create_user("bob", "bob@example.com")
    services.create_backup("full")
    verified = services.verify_backup()
    assert verified.status == Backup.Status.VERIFIED
    assert verified.restore_seconds is not None


def test_a_live_restore_swaps_the_file_under_django_and_leaves_the_site_up(
    backup_dirs: dict[str, Path], transactional_db: Any
) -> None:
    from maintenance import state

    for n in range(5):
        User.objects.create_user(f"user{n}", f"user{n}@example.com")
    original = sorted(User.objects.values_list("username", flat=True))
    state.enable(message="backup taken during maintenance", actor="test")
    backup = services.create_backup("db")
    state.disable(actor="test")
    User.objects.filter(username__in=["user1", "user3"]).delete()
    seen: list[bool] = []

    def progress(phase: str, done: int, total: int | None) -> None:
        if phase == "restore":
            seen.append(state.current(fresh=True).is_down)

    restore_backup(backup.pk, progress=progress)
    assert seen == [True]
    assert sorted(User.objects.values_list("username", flat=True)) == original
    assert state.current(fresh=True).is_down is False
    assert Backup.objects.get(pk=backup.pk).is_restorable
