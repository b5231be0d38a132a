"""Backups as processes: a killed run leaves nothing restorable, and the database password
never shows in a child's argv, in the logs or in what we store."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from backups import services
from backups.engines import postgres
from backups.errors import BackupError
from backups.models import Backup
from backups.restore import restore_backup
from tests.backups_support import write_tree
from tests.conftest import ROOT, subprocess_env


def _manage(*args: str, env: dict[str, str], out: Path) -> subprocess.Popen[bytes]:
    with open(out, "wb") as fh:
        return subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.slow
def test_a_backup_killed_mid_run_leaves_nothing_restorable(
    backup_dirs: dict[str, Path], transactional_db: Any, capsys: Any
) -> None:
    write_tree(
        backup_dirs["media"], {f"blob{i}.bin": os.urandom(8 * 1024 * 1024) for i in range(8)}
    )
    env = subprocess_env(
        BACKUP_STORAGE_URL=f"file://{backup_dirs['store']}",
        MEDIA_ROOT=str(backup_dirs["media"]),
        OPS_BACKUP_PATHS="",
    )
    proc = _manage("backup", "--files-only", env=env, out=backup_dirs["tmp"] / "out.log")
    deadline = time.monotonic() + 30
    partial: list[Path] = []
    while time.monotonic() < deadline and not partial:
        partial = [p for p in backup_dirs["store"].rglob("*.partial") if p.stat().st_size > 0]
        time.sleep(0.01)
    assert partial, "the backup started writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    backup = Backup.objects.get()
    assert backup.status == Backup.Status.RUNNING  # what a killed process leaves behind
    assert not Backup.objects.restorable().exists()
    call_command("listbackups")
    assert "1 backups, 0 restorable" in capsys.readouterr().out
    with pytest.raises(BackupError, match="there is no completed backup"):
        restore_backup("latest", database=False, files=True)
    # The next run (or the daily cleanup) notices the dead process and clears its leftovers.
    services.cleanup()
    backup.refresh_from_db()
    assert backup.status == Backup.Status.FAILED
    assert "stopped before finishing" in backup.error
    assert list(backup_dirs["store"].rglob("*")) == []


def _descends_from(pid: int, root: int) -> bool:
    """Whether process `pid` is `root` or runs under it (other test runs on the machine may
    have pg_dump processes of their own)."""
    for _ in range(64):
        if pid == root:
            return True
        if pid <= 1:
            return False
        try:
            stat_line = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat_line.rpartition(")")[2].split()[1])
    return False


def _scan_children(password: str, seen: dict[str, Any], root: int) -> None:
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if password.encode() in cmdline:
            seen["leaks"].append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
        is_pg_dump = cmdline.startswith(b"/usr/bin/pg_dump") or b"/pg_dump\0" in cmdline
        if is_pg_dump and _descends_from(int(entry.name), root):
            seen["pg_dump"] += 1
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            env = dict(item.split(b"=", 1) for item in environ if b"=" in item)
            seen["pgpassword"] |= b"PGPASSWORD" in env
            passfile = env.get(b"PGPASSFILE")
            if passfile:
                try:
                    mode = stat.S_IMODE(os.stat(passfile).st_mode)
                    body = Path(passfile.decode()).read_text()
                except OSError:
                    continue
                seen["passfiles"].append((passfile.decode(), mode, password in body))


@pytest.mark.postgres
@pytest.mark.slow
def test_the_database_password_never_appears_in_argv_logs_or_records(
    backup_dirs: dict[str, Path], transactional_db: Any
) -> None:
    password = "s3cret-Pw-7f3a9"  # noqa: S105  (trust auth: the server accepts and ignores it)
    with connection.cursor() as cursor:
        # Enough rows that pg_dump runs long enough to be seen in /proc.
        cursor.execute(
            "CREATE TABLE bk_filler AS SELECT g AS id, md5(g::text) AS body "
            "FROM generate_series(1, 400000) g"
        )
    db = connection.settings_dict
    user, host, port = db["USER"] or "postgres", db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    url = f"postgres://{user}:{password}@{host}:{port}/{db['NAME']}"
    env = subprocess_env(
        DATABASE_URL=url,
        BACKUP_STORAGE_URL=f"file://{backup_dirs['store']}",
        LOG_LEVEL="DEBUG",
    )
    log = backup_dirs["tmp"] / "out.log"
    proc = _manage("backup", "--db-only", env=env, out=log)
    seen: dict[str, Any] = {"leaks": [], "pg_dump": 0, "pgpassword": False, "passfiles": []}
    while proc.poll() is None:
        _scan_children(password, seen, proc.pid)
    assert proc.returncode == 0, log.read_text()
    assert seen["pg_dump"] > 0, "pg_dump was running while we looked"
    assert seen["leaks"] == []
    assert seen["pgpassword"] is False
    assert seen["passfiles"], "pg_dump got a PGPASSFILE"
    assert all(mode == 0o600 and has_pw for _, mode, has_pw in seen["passfiles"])
    assert not any(Path(path).exists() for path, _, _ in seen["passfiles"]), "removed afterwards"
    output = log.read_text()
    assert "backup 1 completed" in output or "completed" in output
    assert password not in output
    for path in backup_dirs["store"].rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes()
    backup = Backup.objects.get()
    assert password not in repr(Backup.objects.filter(pk=backup.pk).values().first())
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bk_filler")


@pytest.mark.postgres
def test_it_says_clearly_when_pg_dump_is_older_than_the_server(db: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version_num')::int / 10000")
        server = cursor.fetchone()[0]
    postgres.require_dump_fits(server, server)
    postgres.require_dump_fits(server + 1, server)
    with pytest.raises(
        BackupError, match=f"pg_dump {server - 1} cannot dump a PostgreSQL {server} server"
    ):
        postgres.require_dump_fits(server - 1, server)
