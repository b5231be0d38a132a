"""Health component, Prometheus gauges, signals and the scheduled jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from health_check.exceptions import ServiceUnavailable

from backups import services, tasks
from backups.health import BackupFreshness
from backups.models import Backup
from backups.prometheus import collect
from backups.signals import backup_completed, backup_failed
from health import registry
from tests.backups_support import write_tree

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def completed(age: timedelta, **fields: Any) -> Backup:
    return Backup.objects.create(
        kind="full",
        status=fields.pop("status", Backup.Status.COMPLETED),
        started_at=NOW - age - timedelta(minutes=5),
        finished_at=NOW - age,
        size=fields.pop("size", 123_456),
        **fields,
    )


def test_the_backups_component_is_registered() -> None:
    component = registry.get("backups")
    assert component is not None
    assert isinstance(component.factory()[0], BackupFreshness)


def test_health_fails_without_any_backup(db: Any) -> None:
    with pytest.raises(ServiceUnavailable, match="no completed backup"):
        BackupFreshness().run()


def test_health_passes_with_a_fresh_backup_and_shows_age_and_size(db: Any) -> None:
    completed(timedelta(hours=3))
    check = BackupFreshness()
    with time_machine.travel(NOW, tick=False):
        check.run()
    assert check.observations == [
        {"measurement": "age", "observedValue": 10800.0, "observedUnit": "s"},
        {"measurement": "size", "observedValue": 123_456, "observedUnit": "bytes"},
    ]


def test_health_fails_when_the_newest_backup_is_older_than_the_max_age(
    db: Any, settings: Any
) -> None:
    settings.OPS_BACKUP_MAX_AGE = 26 * 3600
    completed(timedelta(hours=27))
    Backup.objects.create(kind="full", status="failed", started_at=NOW)  # failures don't count
    with (
        time_machine.travel(NOW, tick=False),
        pytest.raises(ServiceUnavailable, match="27.0 h old \\(limit 26.0 h\\)"),
    ):
        BackupFreshness().run()


def test_health_fails_when_verification_failed(db: Any) -> None:
    completed(timedelta(hours=1), verify_failed_at=NOW, verify_error="checksum mismatch")
    with (
        time_machine.travel(NOW, tick=False),
        pytest.raises(
            ServiceUnavailable, match="verification of backup .* failed: checksum mismatch"
        ),
    ):
        BackupFreshness().run()


def test_prometheus_gauges_show_age_size_and_restore_time(db: Any) -> None:
    completed(timedelta(minutes=30), size=4096, verified_at=NOW, restore_seconds=12.5)
    with time_machine.travel(NOW, tick=False):
        metrics = {m.name: m.samples for m in collect()}
    assert metrics["ops_backup_last_completed_age_seconds"][0].value == 1800
    assert metrics["ops_backup_last_completed_size_bytes"][0].value == 4096
    assert metrics["ops_backup_last_verify_restore_seconds"][0].value == 12.5


def test_prometheus_shows_no_figure_it_has_not_measured(db: Any) -> None:
    metrics = {m.name: m.samples for m in collect()}
    assert all(samples == [] for samples in metrics.values())


def test_signals_are_sent_and_a_failing_receiver_never_aborts_the_backup(
    backup_dirs: dict[str, Path], db: Any
) -> None:
    received: list[dict[str, Any]] = []

    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("the mail server is down")

    def record(sender: Any, **kwargs: Any) -> None:
        received.append(kwargs)

    backup_completed.connect(broken)
    backup_completed.connect(record)
    backup_failed.connect(broken)
    backup_failed.connect(record)
    try:
        write_tree(backup_dirs["media"], {"a.txt": b"a"})
        backup = services.create_backup("files")
        assert backup.status == Backup.Status.COMPLETED
        (backup_dirs["extra"]).rmdir()
        with pytest.raises(services.BackupError):
            services.create_backup("files")
    finally:
        for receiver in (broken, record):
            backup_completed.disconnect(receiver)
            backup_failed.disconnect(receiver)
    assert received[0]["backup_id"] == backup.pk and received[0]["size"] == backup.size
    assert received[1]["phase"] == "backup" and "OPS_BACKUP_PATHS" in received[1]["reason"]


def test_a_second_backup_while_one_runs_is_refused(backup_dirs: dict[str, Path], db: Any) -> None:
    import os
    import socket

    Backup.objects.create(
        kind="full",
        status="running",
        started_at=datetime.now(UTC),
        heartbeat_at=datetime.now(UTC),
        hostname=socket.gethostname(),
        pid=os.getpid(),
    )
    with pytest.raises(services.BackupError, match="is still running: wait for it"):
        services.create_backup("files")


def test_the_scheduled_job_backs_up_once_and_is_idempotent(
    backup_dirs: dict[str, Path], db: Any
) -> None:
    first = tasks.run_scheduled_backup.apply(kwargs={"kind": "files"}).get()
    second = tasks.run_scheduled_backup.apply(kwargs={"kind": "files"}).get()
    assert "backup_id" in first
    assert second == {"skipped": "a backup completed recently"}
    assert Backup.objects.count() == 1


def test_the_weekly_job_verifies_the_latest_backup(backup_dirs: dict[str, Path], db: Any) -> None:
    write_tree(backup_dirs["media"], {"a.txt": b"a"})
    backup = services.create_backup("files")
    result = tasks.verify_latest_backup.apply().get()
    assert result["backup_id"] == backup.pk and result["verified"] is True


def test_the_beat_schedule_backs_up_monday_to_saturday(settings: Any) -> None:
    # Sunday's backup and its verification are the weekly upkeep's (tests/test_beat_schedule.py).
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["backups-daily"]["task"] == "backups.tasks.run_scheduled_backup"
    assert schedule["backups-daily"]["schedule"].day_of_week == {1, 2, 3, 4, 5, 6}
    assert "backups-verify-weekly" not in schedule
