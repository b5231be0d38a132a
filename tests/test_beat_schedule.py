"""Schedules are declared in code and synced into django-celery-beat's tables."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from opsconsole.celery import app
from opsconsole.scheduler import OpsScheduler as DatabaseScheduler


# The scheduler closes old connections as beat does: run outside the test's transaction.
@pytest.mark.django_db(transaction=True)
def test_beat_syncs_the_declared_schedules_into_the_database() -> None:
    DatabaseScheduler(app=app)
    names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert set(settings.CELERY_BEAT_SCHEDULE) <= names
    task = PeriodicTask.objects.get(name="perform-health-check")
    assert task.task == "health.tasks.perform_health_check"
    assert task.interval is not None and task.interval.every == 60


def test_every_scheduled_task_is_registered_with_the_app() -> None:
    app.loader.import_default_modules()
    missing = [
        entry["task"]
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] not in app.tasks
    ]
    assert missing == []


def test_the_celery_app_reads_django_settings(settings: Any) -> None:
    assert app.conf.beat_scheduler == "opsconsole.scheduler:OpsScheduler"
    assert app.conf.result_backend == "django-db"


@pytest.mark.django_db(transaction=True)
def test_a_schedule_retimed_in_the_admin_keeps_its_timing_across_beat_restarts() -> None:
    DatabaseScheduler(app=app)
    task = PeriodicTask.objects.get(name="perform-health-check")
    every_five_minutes, _ = IntervalSchedule.objects.get_or_create(
        every=300, period=IntervalSchedule.SECONDS
    )
    task.interval = every_five_minutes
    task.enabled = False
    task.task = "someone.renamed.it"  # code-owned: put back at the next start
    task.save()

    DatabaseScheduler(app=app)  # the next deploy's beat

    task.refresh_from_db()
    assert task.interval is not None and task.interval.every == 300
    assert task.enabled is False
    assert task.task == "health.tasks.perform_health_check"


@pytest.mark.django_db(transaction=True)
def test_a_deleted_schedule_comes_back_with_the_codes_timing() -> None:
    DatabaseScheduler(app=app)
    PeriodicTask.objects.filter(name="perform-health-check").delete()
    DatabaseScheduler(app=app)
    task = PeriodicTask.objects.get(name="perform-health-check")
    assert task.interval is not None and task.interval.every == 60
    assert task.enabled is True


BACKUP_TASKS = {
    "backups.tasks.run_scheduled_backup",
    "maintenance.tasks.perform_weekly_maintenance",  # backs up, then verifies that backup
}


def test_every_day_of_the_week_has_exactly_one_scheduled_backup() -> None:
    per_day: dict[int, list[str]] = {day: [] for day in range(7)}  # 0 is Sunday, as in crontab
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        if entry["task"] in BACKUP_TASKS:
            days: set[int] = entry["schedule"].day_of_week  # type: ignore[attr-defined]
            for day in days:
                per_day[day].append(name)
    assert per_day[0] == ["perform-weekly-maintenance"]
    assert all(names == ["backups-daily"] for day, names in per_day.items() if day != 0)


def test_backups_stay_a_day_apart_across_sunday() -> None:
    # At the same time every day, so no gap comes near OPS_BACKUP_MAX_AGE (26 h).
    schedule = settings.CELERY_BEAT_SCHEDULE
    daily, weekly = (
        schedule[name]["schedule"] for name in ("backups-daily", "perform-weekly-maintenance")
    )
    assert (daily.hour, daily.minute) == (weekly.hour, weekly.minute)  # type: ignore[attr-defined]
    assert daily.hour == {settings.OPS_BACKUP_HOUR}  # type: ignore[attr-defined]


def test_no_separate_schedule_verifies_backups_beside_the_weekly_upkeep() -> None:
    verifying = [
        name
        for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
        if entry["task"] == "backups.tasks.verify_latest_backup"
    ]
    assert verifying == []


def _one_sunday_backup() -> Any:
    from importlib import import_module

    return import_module("backups.migrations.0002_one_sunday_backup").one_sunday_backup


@pytest.mark.django_db
def test_the_migration_removes_the_weekly_verification_and_frees_sunday_from_the_daily_backup() -> (
    None
):
    from django.apps import apps
    from django_celery_beat.models import CrontabSchedule

    every_day, _ = CrontabSchedule.objects.get_or_create(minute="0", hour="2", day_of_week="*")
    sunday, _ = CrontabSchedule.objects.get_or_create(minute="0", hour="4", day_of_week="0")
    PeriodicTask.objects.create(
        name="backups-verify-weekly", task="backups.tasks.verify_latest_backup", crontab=sunday
    )
    daily = PeriodicTask.objects.create(
        name="backups-daily", task="backups.tasks.run_scheduled_backup", crontab=every_day
    )
    # Another task an operator put on the same crontab row keeps its every-day timing.
    other = PeriodicTask.objects.create(name="nightly-report", task="x.report", crontab=every_day)
    weekly = PeriodicTask.objects.create(
        name="perform-weekly-maintenance",
        task="maintenance.tasks.perform_weekly_maintenance",
        crontab=CrontabSchedule.objects.create(minute="0", hour="4", day_of_week="sun"),
    )

    _one_sunday_backup()(apps, None)

    assert not PeriodicTask.objects.filter(name="backups-verify-weekly").exists()
    daily.refresh_from_db()
    assert (daily.crontab.minute, daily.crontab.hour) == ("0", "2")
    assert daily.crontab.day_of_week == "1-6"
    other.refresh_from_db()
    assert other.crontab.day_of_week == "*"
    weekly.refresh_from_db()
    assert (weekly.crontab.hour, weekly.crontab.day_of_week) == ("2", "sun")


@pytest.mark.django_db
def test_the_migration_leaves_schedules_the_operator_retimed_alone() -> None:
    from django.apps import apps
    from django_celery_beat.models import CrontabSchedule

    weekdays, _ = CrontabSchedule.objects.get_or_create(minute="15", hour="1", day_of_week="1-5")
    daily = PeriodicTask.objects.create(
        name="backups-daily", task="backups.tasks.run_scheduled_backup", crontab=weekdays
    )
    saturday, _ = CrontabSchedule.objects.get_or_create(minute="0", hour="4", day_of_week="6")
    weekly = PeriodicTask.objects.create(
        name="perform-weekly-maintenance",
        task="maintenance.tasks.perform_weekly_maintenance",
        crontab=saturday,
    )
    _one_sunday_backup()(apps, None)
    daily.refresh_from_db()
    weekly.refresh_from_db()
    assert daily.crontab_id == weekdays.pk
    assert weekly.crontab_id == saturday.pk
