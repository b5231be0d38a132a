"""Beat jobs: thin wrappers around metrics.services (idempotent, safe with two workers)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from metrics import services


# Collections run every minute: one must not overlap the next.
@shared_task(
    name="metrics.tasks.collect_performance_metrics",
    ignore_result=True,
    soft_time_limit=45,
    time_limit=60,
)
def collect_performance_metrics() -> dict[str, Any]:
    return services.collect_performance_metrics()


@shared_task(
    name="metrics.tasks.collect_resource_usage",
    ignore_result=True,
    soft_time_limit=45,
    time_limit=60,
)
def collect_resource_usage() -> dict[str, Any]:
    """Sample this worker's host, then ask every other worker to sample its own."""
    result = services.collect_resource_usage()
    result["broadcast"] = services.ask_every_worker_host()
    return result


@shared_task(
    name="metrics.tasks.roll_up_metrics", ignore_result=True, soft_time_limit=300, time_limit=360
)
def roll_up_metrics() -> dict[str, int]:
    return services.roll_up()


@shared_task(
    name="metrics.tasks.find_missing_hosts", ignore_result=True, soft_time_limit=45, time_limit=60
)
def find_missing_hosts() -> list[str]:
    """Hosts that stopped reporting: marked missing (and alerted) once."""
    from metrics.hosts import find_missing

    return find_missing()
