"""Retention: laravel-backup's GFS defaults, a size cap, and no way to delete everything."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError

from backups import services
from backups.errors import BackupError
from backups.models import Backup
from backups.retention import apply_retention

NOW = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)

# Two years of daily 02:00 backups, judged on Thursday 2026-11-26 at 03:00 UTC.
EXPECTED = [
    # every backup of the last 7 days
    "2026-11-26", "2026-11-25", "2026-11-24", "2026-11-23", "2026-11-22", "2026-11-21",
    "2026-11-20",
    # one per day for the 16 days before
    "2026-11-19", "2026-11-18", "2026-11-17", "2026-11-16", "2026-11-15", "2026-11-14",
    "2026-11-13", "2026-11-12", "2026-11-11", "2026-11-10", "2026-11-09", "2026-11-08",
    "2026-11-07", "2026-11-06", "2026-11-05", "2026-11-04",
    # the newest of each ISO week for the 8 weeks before (the first week is partial)
    "2026-11-03", "2026-11-01", "2026-10-25", "2026-10-18", "2026-10-11", "2026-10-04",
    "2026-09-27", "2026-09-20", "2026-09-13",
    # the newest of each month for the 4 months before
    "2026-09-08", "2026-08-31", "2026-07-31", "2026-06-30", "2026-05-31",
    # the newest of each year for the 2 years before
    "2026-05-08", "2025-12-31", "2024-12-31",
]  # fmt: skip


def make_daily(days: int, *, size: int = 1024, kind: str = "full") -> None:
    Backup.objects.bulk_create(
        Backup(
            kind=kind,
            status=Backup.Status.COMPLETED,
            name=f"daily-{i}",
            started_at=datetime(2026, 11, 26, 2, 0, tzinfo=UTC) - timedelta(days=i),
            size=size,
        )
        for i in range(days)
    )


def remaining() -> list[str]:
    return [f"{b.started_at:%Y-%m-%d}" for b in Backup.objects.order_by("-started_at")]


def test_two_years_of_daily_backups_leave_exactly_the_gfs_set(
    backup_dirs: dict[str, Path], db: Any, settings: Any
) -> None:
    settings.OPS_BACKUP_MAX_STORAGE_MB = 0
    make_daily(730)
    with time_machine.travel(NOW, tick=False):
        deleted = apply_retention()
    assert len(deleted) == 730 - len(EXPECTED)
    assert remaining() == EXPECTED


def test_a_dry_run_lists_what_would_go_and_deletes_nothing(
    backup_dirs: dict[str, Path], db: Any, settings: Any, capsys: Any
) -> None:
    settings.OPS_BACKUP_MAX_STORAGE_MB = 0
    make_daily(60)
    (backup_dirs["store"] / "daily-59").mkdir()
    with time_machine.travel(NOW, tick=False):
        doomed = apply_retention(dry_run=True)
        call_command("prunebackups", "--dry-run")
    assert len(doomed) > 0
    assert Backup.objects.count() == 60
    assert (backup_dirs["store"] / "daily-59").exists()
    assert f"retention would delete {len(doomed)} backups" in capsys.readouterr().out


def test_it_deletes_the_artifacts_with_the_record(
    backup_dirs: dict[str, Path], db: Any, settings: Any
) -> None:
    settings.OPS_BACKUP_MAX_STORAGE_MB = 0
    make_daily(60)
    folder = backup_dirs["store"] / "daily-59"
    folder.mkdir()
    (folder / "db.dump").write_bytes(b"old")
    with time_machine.travel(NOW, tick=False):
        apply_retention()
    assert not folder.exists()
    assert not Backup.objects.filter(name="daily-59").exists()


def test_the_size_cap_never_deletes_the_newest_backup(
    backup_dirs: dict[str, Path], db: Any, settings: Any
) -> None:
    settings.OPS_BACKUP_MAX_STORAGE_MB = 1
    make_daily(5, size=10 * 1024 * 1024)
    with time_machine.travel(NOW, tick=False):
        apply_retention()
    assert remaining() == ["2026-11-26"]


def test_the_newest_verified_backup_is_kept_too(
    backup_dirs: dict[str, Path], db: Any, settings: Any
) -> None:
    settings.OPS_BACKUP_MAX_STORAGE_MB = 1
    make_daily(5, size=10 * 1024 * 1024)
    Backup.objects.filter(name="daily-3").update(
        status=Backup.Status.VERIFIED, verified_at=NOW - timedelta(days=2)
    )
    with time_machine.travel(NOW, tick=False):
        apply_retention()
    assert remaining() == ["2026-11-26", "2026-11-23"]


@pytest.mark.parametrize("value", [None, "7", -1])
def test_a_missing_or_invalid_setting_stops_retention(
    backup_dirs: dict[str, Path], db: Any, settings: Any, value: Any
) -> None:
    make_daily(60)
    settings.OPS_BACKUP_KEEP_DAILY_DAYS = value
    with time_machine.travel(NOW, tick=False), pytest.raises(BackupError, match="retention"):
        apply_retention()
    with pytest.raises(CommandError, match="OPS_BACKUP_KEEP_DAILY_DAYS"):
        call_command("prunebackups")
    assert Backup.objects.count() == 60


def test_keeping_zero_days_is_refused(backup_dirs: dict[str, Path], db: Any, settings: Any) -> None:
    make_daily(3)
    settings.OPS_BACKUP_KEEP_ALL_DAYS = 0
    with pytest.raises(BackupError, match="at least 1"):
        apply_retention()
    assert Backup.objects.count() == 3


def test_failed_and_running_backups_are_not_counted_as_keepers(
    backup_dirs: dict[str, Path], db: Any, settings: Any
) -> None:
    settings.OPS_BACKUP_MAX_STORAGE_MB = 0
    make_daily(30)
    newest = Backup.objects.order_by("-started_at").first()
    assert newest is not None
    Backup.objects.create(kind="full", status=Backup.Status.FAILED, started_at=NOW, name="x")
    with time_machine.travel(NOW, tick=False):
        apply_retention()
    assert Backup.objects.filter(pk=newest.pk).exists()
    assert Backup.objects.filter(status=Backup.Status.FAILED).count() == 1


def test_cleanup_deletes_old_failed_records_only(
    backup_dirs: dict[str, Path], db: Any, settings: Any
) -> None:
    settings.OPS_BACKUP_FAILED_KEEP_DAYS = 30
    Backup.objects.create(kind="db", status="failed", started_at=NOW - timedelta(days=31))
    Backup.objects.create(kind="db", status="failed", started_at=NOW - timedelta(days=2))
    make_daily(2)
    with time_machine.travel(NOW, tick=False):
        assert services.cleanup() == {"backups.Backup": 1}
    assert Backup.objects.count() == 3
