"""Backups on a real PostgreSQL server: round trip, refusing damaged archives, failures that
leave the target untouched, version/engine checks and maintenance mode across a restore."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection

from backups import services
from backups.errors import BackupError
from backups.models import Backup
from backups.restore import restore_backup
from backups.runs import reap_stale
from backups.signals import backup_failed
from maintenance import state
from tests.backups_support import databases_like, query, scratch_db

pytestmark = [pytest.mark.postgres]


@pytest.fixture
def target(transactional_db: Any) -> Any:
    yield from scratch_db(f"{connection.settings_dict['NAME']}_bk_target")


def users(dbname: str) -> list[tuple[Any, ...]]:
    return query(dbname, "SELECT id, username, email, is_staff FROM auth_user ORDER BY id")


def make_users() -> list[tuple[Any, ...]]:
    for n in range(25):
        User.objects.create_user(f"user{n}", f"user{n}@example.com", is_staff=n % 3 == 0)
    return users(connection.settings_dict["NAME"])


def artifact_path(store: Path, backup: Backup, role: str = "db") -> Path:
    art = backup.artifact(role)
    assert art is not None
    return store / art["name"]


def test_it_restores_the_data_as_it_was(backup_dirs: dict[str, Path], target: str) -> None:
    original = make_users()
    backup = services.create_backup("db")
    assert backup.status == Backup.Status.COMPLETED
    assert backup.row_counts["public.auth_user"] == 25
    restore_backup(backup.pk, target_db=target)
    assert users(target) == original
    # Change and drop data in the target, then restore over it: the swap replaces it.
    with_changes = query(target, "SELECT 1")  # the target exists and answers
    assert with_changes == [(1,)]
    query(target, "DELETE FROM auth_user WHERE mod(id, 2) = 0")
    query(target, "UPDATE auth_user SET email = 'changed@example.com'")
    query(target, "DROP TABLE opsconsole_systemlog CASCADE")
    assert users(target) != original
    result = restore_backup("latest", target_db=target)
    assert users(target) == original
    assert query(target, "SELECT count(*) FROM opsconsole_systemlog")[0][0] >= 0
    assert result["row_counts"]["public.auth_user"] == 25
    assert databases_like(target) == [target], "no scratch or old database is left behind"


def test_it_writes_a_manifest_beside_the_artifacts(
    backup_dirs: dict[str, Path], transactional_db: Any
) -> None:
    make_users()
    backup = services.create_backup("full")
    manifest = json.loads((backup_dirs["store"] / backup.name / "manifest.json").read_text())
    assert manifest["id"] == backup.pk
    assert manifest["kind"] == "full"
    assert manifest["engine"] == "postgresql"
    assert manifest["server_major"] == 15
    assert manifest["app_version"]
    assert manifest["started_at"] and manifest["finished_at"]
    assert {a["role"] for a in manifest["artifacts"]} == {"db", "files"}
    assert all(len(a["sha256"]) == 64 and a["size"] > 0 for a in manifest["artifacts"])
    assert manifest["row_counts"]["public.auth_user"] == 25
    assert manifest["size"] == backup.size


def test_it_refuses_an_archive_with_one_flipped_byte(
    backup_dirs: dict[str, Path], target: str
) -> None:
    original = make_users()
    backup = services.create_backup("db")
    restore_backup(backup.pk, target_db=target)
    path = artifact_path(backup_dirs["store"], backup)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    query(target, "DELETE FROM auth_user WHERE id > 20")
    before = users(target)
    with pytest.raises(BackupError, match="fails its checksum"):
        restore_backup(backup.pk, target_db=target)
    assert users(target) == before != original
    assert databases_like(target) == [target]


def test_a_restore_that_fails_midway_leaves_the_database_untouched(
    backup_dirs: dict[str, Path], target: str
) -> None:
    make_users()
    backup = services.create_backup("db")
    restore_backup(backup.pk, target_db=target)
    query(target, "UPDATE auth_user SET email = 'kept@example.com'")
    before = users(target)
    # A truncated archive whose recorded checksum matches: pg_restore itself fails midway.
    path = artifact_path(backup_dirs["store"], backup)
    data = path.read_bytes()[: backup.artifact("db")["size"] * 2 // 3]  # type: ignore[index]
    path.write_bytes(data)
    import hashlib

    art = dict(backup.artifact("db") or {})
    art.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    Backup.objects.filter(pk=backup.pk).update(artifacts=[art])
    failures: list[dict[str, Any]] = []

    def on_failed(sender: Any, **kwargs: Any) -> None:
        failures.append(kwargs)

    backup_failed.connect(on_failed)
    try:
        with pytest.raises(BackupError, match="pg_restore exited"):
            restore_backup(backup.pk, target_db=target)
    finally:
        backup_failed.disconnect(on_failed)
    assert users(target) == before
    assert databases_like(target) == [target], "the half-restored scratch database is dropped"
    assert failures and failures[0]["phase"] == "restore"


def test_it_refuses_a_restore_whose_row_counts_differ_from_the_manifest(
    backup_dirs: dict[str, Path], target: str
) -> None:
    make_users()
    backup = services.create_backup("db")
    restore_backup(backup.pk, target_db=target)
    before = users(target)
    counts = dict(backup.row_counts)
    counts["public.auth_user"] = 999
    Backup.objects.filter(pk=backup.pk).update(row_counts=counts)
    _edit_manifest(backup_dirs["store"], backup, row_counts=counts)
    with pytest.raises(BackupError, match="auth_user has 25 rows, expected 999"):
        restore_backup(backup.pk, target_db=target)
    assert users(target) == before


def _edit_manifest(store: Path, backup: Backup, **changes: Any) -> None:
    """Make the backup look as if it had been written so: manifest and the console's record of
    its checksum alike (a manifest changed behind the record's back is refused earlier)."""
    manifest = store / backup.name / "manifest.json"
    doc = json.loads(manifest.read_text())
    doc.update(changes)
    body = json.dumps(doc).encode()
    manifest.write_bytes(body)
    Backup.objects.filter(pk=backup.pk).update(manifest_sha256=hashlib.sha256(body).hexdigest())


def test_it_refuses_a_restore_across_engines(backup_dirs: dict[str, Path], target: str) -> None:
    backup = services.create_backup("db")
    _edit_manifest(backup_dirs["store"], backup, engine="sqlite")
    with pytest.raises(BackupError, match="restoring across engines is not supported"):
        restore_backup(backup.pk, target_db=target)
    assert databases_like(target) == []


def test_it_refuses_a_backup_from_a_newer_major_version(
    backup_dirs: dict[str, Path], target: str
) -> None:
    backup = services.create_backup("db")
    _edit_manifest(backup_dirs["store"], backup, server_major=99, dump_tool_major=99)
    with pytest.raises(BackupError, match="comes from PostgreSQL 99 and this server is"):
        restore_backup(backup.pk, target_db=target)


def test_it_keeps_the_targets_maintenance_state_across_a_restore(
    backup_dirs: dict[str, Path], target: str
) -> None:
    # The backup is taken while the site is down...
    state.enable(message="taken while down", actor="test")
    backup = services.create_backup("db")
    state.disable(actor="test")
    restore_backup(backup.pk, target_db=target)
    # ...yet restoring it does not take a running target down,
    row = "SELECT is_down, message FROM maintenance_maintenancestate"
    assert query(target, row)[0][0] is False
    # and a target that was down for its own reason stays down with its own message.
    query(target, "UPDATE maintenance_maintenancestate SET is_down = true, message = 'planned'")
    restore_backup(backup.pk, target_db=target)
    assert query(target, row)[0] == (True, "planned")


def test_verification_restores_into_a_scratch_database_and_records_the_time(
    backup_dirs: dict[str, Path], transactional_db: Any
) -> None:
    make_users()
    backup = services.create_backup("full")
    verified = services.verify_backup()
    assert verified.pk == backup.pk
    assert verified.status == Backup.Status.VERIFIED
    assert verified.verified_at is not None
    assert verified.restore_seconds is not None and verified.restore_seconds > 0
    assert databases_like(connection.settings_dict["NAME"] + "__verify") == []


def test_verification_of_a_damaged_backup_fails_and_alerts(
    backup_dirs: dict[str, Path], transactional_db: Any
) -> None:
    backup = services.create_backup("db")
    path = artifact_path(backup_dirs["store"], backup)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    failures: list[dict[str, Any]] = []

    def on_failed(sender: Any, **kwargs: Any) -> None:
        failures.append(kwargs)

    backup_failed.connect(on_failed)
    try:
        result = services.verify_backup(backup.pk)
    finally:
        backup_failed.disconnect(on_failed)
    assert result.verification_failed
    assert "checksum" in result.verify_error
    assert failures == [
        {
            "signal": backup_failed,
            "backup_id": backup.pk,
            "kind": "db",
            "reason": result.verify_error,
            "phase": "verify",
        }
    ]


@pytest.mark.slow
def test_a_restore_of_the_live_database_runs_in_maintenance_mode_and_leaves_the_site_up(
    backup_dirs: dict[str, Path], transactional_db: Any
) -> None:
    original = make_users()
    state.enable(message="backup taken during maintenance", actor="test")
    backup = services.create_backup("db")
    state.disable(actor="test")
    User.objects.filter(username__startswith="user1").delete()
    seen: list[bool] = []

    def progress(phase: str, done: int, total: int | None) -> None:
        if phase == "restore":
            seen.append(state.current(fresh=True).is_down)

    restore_backup(backup.pk, progress=progress)
    assert seen == [True], "maintenance mode is on while the database is replaced"
    assert users(connection.settings_dict["NAME"]) == original
    assert state.current(fresh=True).is_down is False
    # The console still knows its backups, and the restored one is not reaped as dead.
    reap_stale()
    assert Backup.objects.get(pk=backup.pk).is_restorable


@pytest.mark.slow
def test_disaster_recovery_restores_onto_a_server_without_the_console_database(
    backup_dirs: dict[str, Path], transactional_db: Any
) -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT, subprocess_env

    original = make_users()
    backup = services.create_backup("full")
    for lost in scratch_db(f"{connection.settings_dict['NAME']}_dr"):
        db = connection.settings_dict
        host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        url = f"postgres://{db['USER'] or 'postgres'}@{host}/{lost}"
        env = subprocess_env(DATABASE_URL=url, BACKUP_STORAGE_URL=f"file://{backup_dirs['store']}")
        listed = subprocess.run(
            [sys.executable, "manage.py", "listbackups", "--storage"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert "1 complete backups in storage" in listed.stdout
        run = subprocess.run(
            [sys.executable, "manage.py", "restore", "latest", "--yes"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        assert f"restored backup {backup.pk}" in run.stdout
        assert users(lost) == original
        assert query(lost, "SELECT status FROM backups_backup WHERE id = %s", [backup.pk]) == [
            ("completed",)
        ]
        assert query(lost, "SELECT is_down FROM maintenance_maintenancestate") in ([], [(False,)])
