"""The backup commands: one clear line at the end, non-zero exits with what to do next."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from backups.models import Backup
from opsconsole.models import SystemLog
from tests.backups_support import write_tree
from tests.conftest import ROOT, subprocess_env


def test_backup_prints_one_line_and_json(
    backup_dirs: dict[str, Path], transactional_db: Any, capsys: Any
) -> None:
    write_tree(backup_dirs["media"], {"a.txt": b"a"})
    call_command("backup", "--files-only")
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith(f"backup {Backup.objects.get().pk} completed: files")
    call_command("backup", "--db-only", "--json")
    data = json.loads(capsys.readouterr().out)
    assert data["kind"] == "db" and data["status"] == "completed" and data["restorable"]
    assert SystemLog.objects.filter(action="backup.create").count() == 2


def test_listbackups_shows_what_is_restorable(
    backup_dirs: dict[str, Path], transactional_db: Any, capsys: Any
) -> None:
    call_command("backup", "--files-only")
    Backup.objects.create(kind="db", status="failed", started_at=Backup.objects.get().started_at)
    capsys.readouterr()
    call_command("listbackups")
    out = capsys.readouterr().out
    assert "2 backups, 1 restorable" in out
    call_command("listbackups", "--json")
    listed = json.loads(capsys.readouterr().out)
    assert sorted((b["status"], b["restorable"]) for b in listed) == [
        ("completed", True),
        ("failed", False),
    ]
    call_command("listbackups", "--storage")
    assert "1 complete backups in storage" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["restore", "abc", "--yes"], "not a backup id"),
        (["restore", "999", "--yes"], "there is no backup 999"),
        (["restore", "latest", "--yes"], "there is no completed backup"),
        (["restore", "latest"], "run again with --yes"),
        (["verifybackup", "x"], "not a backup id"),
        (["verifybackup", "latest"], "no completed backup to verify"),
        (["verifybackup", "12"], "there is no backup 12"),
    ],
)
def test_commands_answer_bad_input_with_one_clear_line(
    backup_dirs: dict[str, Path], db: Any, args: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        call_command(*args)


def test_restore_refuses_a_failed_backup(backup_dirs: dict[str, Path], db: Any) -> None:
    failed = Backup.objects.create(kind="db", status="failed", started_at="2026-01-01T00:00Z")
    with pytest.raises(CommandError, match=f"backup {failed.pk} is failed and cannot be used"):
        call_command("restore", str(failed.pk), "--yes")


def test_a_files_only_backup_needs_the_files_flag(
    backup_dirs: dict[str, Path], transactional_db: Any, capsys: Any
) -> None:
    write_tree(backup_dirs["media"], {"a.txt": b"a"})
    call_command("backup", "--files-only")
    pk = Backup.objects.get().pk
    with pytest.raises(CommandError, match="holds only files: add --files"):
        call_command("restore", str(pk), "--yes")
    (backup_dirs["media"] / "a.txt").write_text("changed")
    capsys.readouterr()
    call_command("restore", "latest", "--files-only", "--yes")
    assert capsys.readouterr().out.startswith(f"restored backup {pk}: 1 files in")
    (backup_dirs["media"] / "a.txt").write_text("changed again")
    call_command("restore", str(pk), "--files", "--yes")
    assert (backup_dirs["media"] / "a.txt").read_text() == "a"


def test_verifybackup_exits_non_zero_when_the_backup_is_damaged(
    backup_dirs: dict[str, Path], transactional_db: Any
) -> None:
    write_tree(backup_dirs["media"], {"a.txt": b"a" * 1000})
    call_command("backup", "--files-only")
    backup = Backup.objects.get()
    path = backup_dirs["store"] / backup.artifact("files")["name"]  # type: ignore[index]
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(CommandError, match="FAILED verification: .*checksum"):
        call_command("verifybackup", "latest")


def test_a_failing_backup_exits_non_zero_without_a_traceback(
    backup_dirs: dict[str, Path], transactional_db: Any, tmp_path: Path
) -> None:
    env = subprocess_env(
        BACKUP_STORAGE_URL=f"file://{backup_dirs['store']}",
        OPS_BACKUP_PATHS=str(tmp_path / "does-not-exist"),
    )
    run = subprocess.run(
        [sys.executable, "manage.py", "backup", "--files-only"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert "OPS_BACKUP_PATHS names" in run.stderr and "fix the setting" in run.stderr


def test_the_console_verify_action_needs_permission_and_is_audited(
    backup_dirs: dict[str, Path],
    db: Any,
    admin: Any,
    operator: Any,
    client: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    write_tree(backup_dirs["media"], {"a.txt": b"a"})
    from backups import services

    backup = services.create_backup("files")
    url = "/admin/backups/backup/"
    form = {"action": "verify_selected", "_selected_action": [backup.pk]}
    client.force_login(operator)
    assert client.get(url).status_code == 200
    client.post(url, form)
    assert not SystemLog.objects.filter(action="backup.verify.requested").exists()
    client.force_login(admin)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(url, form)
    assert response.status_code == 302
    assert len(callbacks) == 1
    entry = SystemLog.objects.get(action="backup.verify.requested")
    assert entry.actor == admin and entry.target == f"backup {backup.pk}"


@pytest.mark.parametrize(
    ("url", "message"),
    [("ftp://host/x", "unknown scheme 'ftp'"), ("s3:///prefix", "s3:// without a bucket")],
)
def test_a_bad_storage_url_is_one_clear_line(
    backup_dirs: dict[str, Path], db: Any, settings: Any, url: str, message: str
) -> None:
    settings.BACKUP_STORAGE_URL = url
    with pytest.raises(CommandError, match=message):
        call_command("backup")
    with pytest.raises(CommandError, match=message):
        call_command("listbackups", "--storage")
    assert not Backup.objects.exists()


def test_progress_is_shown_on_a_terminal_only() -> None:
    import io

    from backups.management.cli import TtyProgress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen, pipe = Terminal(), io.StringIO()
    for stream in (screen, pipe):
        progress = TtyProgress(stream)
        progress._last = -1.0  # show the first update at once
        progress("db", 3 * 1024 * 1024, 6 * 1024 * 1024)
        progress.done()
    assert "\rdb: 3.0 MiB of 6.0 MiB (50%)" in screen.getvalue()
    assert pipe.getvalue() == ""


def test_progress_counts_the_targets_swapped_in_not_bytes() -> None:
    import io

    from backups.management.cli import TtyProgress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    progress = TtyProgress(screen)
    progress._last = -1.0
    progress("swap", 1, 3)
    assert "\rswapping in: 1 of 3 done" in screen.getvalue()
    assert " B" not in screen.getvalue()


def test_restore_refuses_a_manifest_changed_in_storage_after_the_backup(
    backup_dirs: dict[str, Path], transactional_db: Any
) -> None:
    write_tree(backup_dirs["media"], {"a.txt": b"a"})
    call_command("backup", "--files-only")
    backup = Backup.objects.get()
    manifest = backup_dirs["store"] / backup.name / "manifest.json"
    document = json.loads(manifest.read_text())
    document["tampered"] = True  # e.g. retargeted paths, swapped row counts
    manifest.write_text(json.dumps(document))
    (backup_dirs["media"] / "a.txt").write_text("current")
    with pytest.raises(CommandError, match="does not match the console's record"):
        call_command("restore", str(backup.pk), "--files-only", "--yes")
    assert (backup_dirs["media"] / "a.txt").read_text() == "current"  # nothing touched


def test_a_files_restore_writes_only_to_the_configured_roots(
    backup_dirs: dict[str, Path], transactional_db: Any, settings: Any, tmp_path: Path
) -> None:
    write_tree(backup_dirs["extra"], {"b.txt": b"b"})
    call_command("backup", "--files-only")
    pk = Backup.objects.get().pk
    settings.OPS_BACKUP_PATHS = []  # the root this backup names is no longer configured
    with pytest.raises(CommandError, match=f"write files to {backup_dirs['extra']}, which is not"):
        call_command("restore", str(pk), "--files-only", "--yes")
    assert (backup_dirs["extra"] / "b.txt").read_text() == "b"


def test_without_a_console_record_the_files_restore_shows_its_paths_and_needs_a_flag(
    backup_dirs: dict[str, Path], transactional_db: Any, capsys: Any
) -> None:
    write_tree(backup_dirs["media"], {"a.txt": b"a"})
    call_command("backup", "--files-only")
    Backup.objects.all().delete()  # the console's database is gone; storage is left
    (backup_dirs["media"] / "a.txt").write_text("changed")
    with pytest.raises(CommandError, match=f"would replace {backup_dirs['media']}, .*--trust"):
        call_command("restore", "latest", "--files-only", "--yes")
    assert (backup_dirs["media"] / "a.txt").read_text() == "changed"
    call_command("restore", "latest", "--files-only", "--yes", "--trust-storage-paths")
    assert (backup_dirs["media"] / "a.txt").read_text() == "a"
