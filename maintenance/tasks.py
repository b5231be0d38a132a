"""Thin Celery tasks: call a service, return something JSON-serialisable."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from maintenance import services


@shared_task(
    name="maintenance.tasks.check_maintenance_windows",
    ignore_result=True,
    soft_time_limit=60,
    time_limit=90,
)
def check_maintenance_windows() -> dict[str, list[int]]:
    return services.check_windows()


# Cleanup, vacuum and log rotation of a big installation: long, but never unbounded.
@shared_task(
    name="maintenance.tasks.perform_daily_maintenance", soft_time_limit=3600, time_limit=3900
)
def perform_daily_maintenance() -> dict[str, Any]:
    result: dict[str, Any] = services.perform_daily_maintenance(actor="celery").as_dict()
    return result


@shared_task(
    name="maintenance.tasks.perform_weekly_maintenance",
    soft_time_limit=3 * 3600,
    time_limit=3 * 3600 + 300,
)
def perform_weekly_maintenance() -> dict[str, Any]:
    result: dict[str, Any] = services.perform_weekly_maintenance(actor="celery").as_dict()
    return result
