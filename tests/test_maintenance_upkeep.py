"""Daily and weekly upkeep: run records per step, failures isolated, one run at a time."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from maintenance import steps, upkeep
from maintenance.models import MaintenanceLock, MaintenanceRun
from maintenance.tasks import perform_daily_maintenance, perform_weekly_maintenance
from opsconsole.models import SystemLog


@pytest.fixture
def temp_settings(tmp_path: Path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    with override_settings(OPS_TEMP_DIRS=[str(temp)], OPS_LOG_FILE=str(tmp_path / "ops.log")):
        yield tmp_path


@pytest.mark.django_db(transaction=True)
def test_the_daily_run_records_every_step(temp_settings: Path) -> None:
    result = upkeep.run("daily", actor="cli:test")
    assert result.status == "success", [s.error for s in result.steps]
    runs = MaintenanceRun.objects.filter(run_id=str(result.run_id)).order_by("id")
    assert [r.step for r in runs] == [name for name, _ in upkeep.DAILY_STEPS]
    for run in runs:
        assert run.status in {"success", "skipped"}
        assert run.finished_at is not None and run.duration_ms is not None
        assert run.triggered_by == "cli:test"
    # The log file is empty, so rotation has nothing to do but still succeeds.
    assert runs.get(step="rotate_logs").counts == {"rotated": 0, "kept": 14}
    entry = SystemLog.objects.get(action="maintenance.run_daily")
    assert entry.result == "success" and entry.actor_name == "cli:test"


@pytest.mark.django_db
def test_a_failing_step_is_reported_and_does_not_stop_the_next(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file.txt"
    not_a_dir.write_text("x")
    log = tmp_path / "ops.log"
    log.write_text("a line\n")
    with override_settings(OPS_TEMP_DIRS=[str(not_a_dir)], OPS_LOG_FILE=str(log)):
        result = upkeep.run("daily", only=["clean_temp_files", "rotate_logs"])
    assert [(s.step, s.status) for s in result.steps] == [
        ("clean_temp_files", "failed"),
        ("rotate_logs", "success"),
    ]
    assert result.status == "failed"
    assert "is not a directory" in result.steps[0].error
    assert (tmp_path / "ops.log.1.gz").exists()  # the step after the failure did its work
    failed = MaintenanceRun.objects.get(step="clean_temp_files")
    assert failed.status == "failed" and "OPS_TEMP_DIRS" in failed.error
    assert SystemLog.objects.get(action="maintenance.run_daily").result == "failure"


@pytest.mark.django_db
def test_an_exception_in_a_step_is_caught_and_the_rest_run(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def explode(now: Any) -> dict[str, Any]:
        calls.append("explode")
        raise ZeroDivisionError("division by zero")

    def record(now: Any) -> dict[str, Any]:
        calls.append("record")
        return {"ok": 1}

    monkeypatch.setitem(upkeep.STEPS, "daily", [("explode", explode), ("record", record)])
    result = upkeep.run("daily")
    assert calls == ["explode", "record"]
    assert [s.status for s in result.steps] == ["failed", "success"]
    assert result.steps[0].error.startswith("ZeroDivisionError: division by zero")


@pytest.mark.django_db
def test_a_run_while_another_holds_the_lease_does_nothing() -> None:
    assert upkeep.acquire_lease("upkeep:daily", "other-worker", now=timezone.now())
    result = upkeep.run("daily")
    assert result.status == "skipped"
    assert "in progress" in result.reason
    assert not MaintenanceRun.objects.exists()
    upkeep.release_lease("upkeep:daily", "other-worker")
    assert upkeep.run("daily", only=["purge_expired_cache"]).status == "success"


@pytest.mark.django_db
def test_an_expired_lease_of_a_crashed_worker_is_taken_over() -> None:
    past = timezone.now() - timedelta(hours=7)
    assert upkeep.acquire_lease("upkeep:weekly", "crashed", now=past)
    assert upkeep.acquire_lease("upkeep:weekly", "new", now=timezone.now())
    assert MaintenanceLock.objects.get(name="upkeep:weekly").holder == "new"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_do_the_work_once(monkeypatch: pytest.MonkeyPatch) -> None:
    old = timezone.now() - timedelta(days=200)
    SystemLog.objects.bulk_create([SystemLog(action="old") for _ in range(50)])
    SystemLog.objects.update(created_at=old)
    entered = threading.Event()
    release = threading.Event()

    def hold(now: Any) -> dict[str, Any]:
        entered.set()
        assert release.wait(20)
        return {}

    monkeypatch.setitem(
        upkeep.STEPS, "daily", [("hold", hold), ("retention_cleanup", steps.retention_cleanup)]
    )
    results: list[upkeep.RunResult] = []

    def worker() -> None:
        try:
            results.append(upkeep.run("daily"))
        finally:
            connection.close()

    first = threading.Thread(target=worker)
    first.start()
    assert entered.wait(20)
    second = threading.Thread(target=worker)
    second.start()
    second.join(20)
    release.set()
    first.join(20)
    assert sorted(r.status for r in results) == ["skipped", "success"]
    done = next(r for r in results if r.status == "success")
    assert done.steps[1].counts["deleted"]["maintenance"]["opsconsole.SystemLog"] == 50
    assert MaintenanceRun.objects.filter(step="retention_cleanup").count() == 1


def test_the_weekly_plan_is_a_verified_backup_and_statistics() -> None:
    # No model has an `is_archived` flag, so there is no archiving step to run.
    assert [name for name, _ in upkeep.WEEKLY_STEPS] == ["backup", "update_statistics"]


@pytest.mark.django_db
def test_the_weekly_run_updates_statistics() -> None:
    # The backup step has its own (slow) test below: it makes a real backup.
    result = upkeep.run("weekly", only=["update_statistics"])
    assert [(s.step, s.status) for s in result.steps] == [("update_statistics", "success")]


@pytest.mark.django_db
def test_the_backup_step_says_why_it_skipped_without_the_backups_services() -> None:
    if _backups_ready():
        pytest.skip("backups.services exists: the slow test makes a real backup")
    step = upkeep.run("weekly", only=["backup"]).steps[0]
    assert step.status == "skipped" and "backups" in step.counts["reason"]


# --- the command -------------------------------------------------------------------------------
@pytest.mark.django_db
def test_runmaintenance_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("runmaintenance", "daily", "--json", "--step", "purge_expired_cache")
    payload = json.loads(capsys.readouterr().out)
    assert payload["kind"] == "daily" and payload["status"] == "success"
    assert [s["step"] for s in payload["steps"]] == ["purge_expired_cache"]


@pytest.mark.django_db
def test_runmaintenance_fails_with_one_line_naming_the_failed_step(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "f"
    not_a_dir.write_text("")
    with (
        override_settings(OPS_TEMP_DIRS=[str(not_a_dir)]),
        pytest.raises(CommandError, match="1 failed step.*clean_temp_files"),
    ):
        call_command("runmaintenance", "daily", "--step", "clean_temp_files")


@pytest.mark.django_db
def test_runmaintenance_says_so_when_another_run_is_in_progress() -> None:
    upkeep.acquire_lease("upkeep:daily", "other", now=timezone.now())
    with pytest.raises(CommandError, match="in progress.*try again"):
        call_command("runmaintenance", "daily")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ([], "the following arguments are required: kind"),
        (["monthly"], "invalid choice: 'monthly'"),
        (["daily", "--step", "backup"], "unknown daily step 'backup'"),
        (["weekly", "--step", "archive_old_rows"], "unknown weekly step 'archive_old_rows'"),
    ],
)
def test_runmaintenance_refuses_bad_input(args: list[str], fragment: str) -> None:
    with pytest.raises(CommandError, match=fragment):
        call_command("runmaintenance", *args)
    assert not MaintenanceRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_tasks_return_the_run_as_json(temp_settings: Path) -> None:
    out = perform_daily_maintenance.apply().get()
    assert out["kind"] == "daily" and out["status"] == "success", out
    assert len(out["steps"]) == len(upkeep.DAILY_STEPS)
    json.dumps(out)
    assert perform_weekly_maintenance.name == "maintenance.tasks.perform_weekly_maintenance"


@pytest.mark.slow
def test_a_real_worker_runs_the_daily_task(live_worker: dict[str, Any], tmp_path: Path) -> None:
    async_result = perform_daily_maintenance.delay()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if MaintenanceRun.objects.filter(step="rotate_logs").exclude(status="running").exists():
            break
        time.sleep(0.2)
    steps_done = set(MaintenanceRun.objects.values_list("step", flat=True))
    assert steps_done == {name for name, _ in upkeep.DAILY_STEPS}, live_worker["log"].read_text()
    assert SystemLog.objects.filter(action="maintenance.run_daily", actor_name="celery").exists()
    assert async_result.id


def _backups_ready() -> bool:
    from importlib.util import find_spec

    if find_spec("backups.services") is None:
        return False
    import backups.services as backup_services

    return hasattr(backup_services, "create_backup") and hasattr(backup_services, "verify_backup")


@pytest.mark.slow
@pytest.mark.skipif(not _backups_ready(), reason="backups.services has no create/verify yet")
@pytest.mark.django_db(transaction=True)
def test_the_weekly_backup_step_makes_and_verifies_a_full_backup() -> None:
    result = upkeep.run("weekly", only=["backup"])
    step = result.steps[0]
    assert step.status == "success", step.error
    assert step.counts["verified"] is True and step.counts["backup_id"]


@pytest.mark.django_db
def test_runmaintenance_shows_each_step_as_it_finishes(
    capsys: pytest.CaptureFixture[str], temp_settings: Path
) -> None:
    call_command("runmaintenance", "daily", "--step", "clean_temp_files", "--step", "rotate_logs")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("clean_temp_files") and "success" in lines[0]
    assert lines[1].startswith("rotate_logs")
    assert lines[-1] == "daily maintenance done: 2 step(s)."


@pytest.mark.django_db
def test_steps_left_running_by_a_dead_worker_are_marked_interrupted() -> None:
    stale = MaintenanceRun.objects.create(
        run_id="00000000-0000-0000-0000-0000000000aa",
        kind="daily",
        step="optimize_database",
        started_at=timezone.now() - timedelta(hours=8),
    )
    upkeep.run("daily", only=["purge_expired_cache"])
    stale.refresh_from_db()
    assert stale.status == "failed" and stale.error.startswith("interrupted")


@pytest.mark.slow
@pytest.mark.skipif(not _backups_ready(), reason="backups.services has no create/verify yet")
@pytest.mark.django_db(transaction=True)
def test_it_reports_a_weekly_backup_that_fails_verification_as_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import backups.services as backup_services

    real_create = backup_services.create_backup

    def create_then_damage(**kwargs: Any) -> Any:
        # A real backup whose stored database dump is then damaged, as a bad disk would.
        backup = real_create(**kwargs)
        for path in tmp_path.rglob("*"):
            if path.is_file() and "manifest" not in path.name:
                path.write_bytes(b"damaged" + path.read_bytes()[64:])
        return backup

    monkeypatch.setattr(backup_services, "create_backup", create_then_damage)
    with override_settings(BACKUP_STORAGE_URL=f"file://{tmp_path}"):
        result = upkeep.run("weekly", only=["backup"])
    step = result.steps[0]
    assert step.status == "failed"
    assert "failed verification" in step.error
    assert result.status == "failed"
    assert MaintenanceRun.objects.get(step="backup").status == "failed"
