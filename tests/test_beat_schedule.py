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
