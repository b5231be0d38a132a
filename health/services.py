"""Health verbs: run the checks, record a run, detect transitions, report uptime, clean up."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from health import registry, signals
from health.models import ComponentResult, ComponentState, HealthCheck, Status
from health.runner import FAIL, Report, report_cache, run_components

logger = logging.getLogger("opsconsole.health")

UPTIME_WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


class UnknownComponent(KeyError):
    pass


def resolve(scope: str) -> list[str]:
    """`full`, `ready`, or one component name -> the component names to run."""
    if scope == "full":
        return registry.names()
    if scope == "ready":
        return registry.names(ready=True)
    if registry.get(scope) is None:
        raise UnknownComponent(scope)
    return [scope]


def get_report(scope: str, *, cached: bool = True) -> Report:
    names = resolve(scope)
    if cached:
        return report_cache.get(names, settings.OPS_HEALTH_CACHE_TTL)
    return run_components(names)


def _outcome_details(report: Report) -> dict[str, Any]:
    return {
        o.component: {
            "status": o.status,
            "output": o.output,
            "duration_ms": o.duration_ms,
            "observations": o.observations,
        }
        for o in report.outcomes
    }


def perform_health_check(*, trigger: str = "schedule") -> HealthCheck:
    """Run every check, store the run, and announce transitions once each."""
    report = run_components(registry.names())
    run = HealthCheck.objects.create(
        created_at=report.time,
        status=report.status,
        duration_ms=report.duration_ms,
        trigger=trigger,
        hostname=settings.OPS_HOST_NAME[:255],
        details=_outcome_details(report),
    )
    ComponentResult.objects.bulk_create(
        ComponentResult(
            run=run,
            created_at=report.time,
            component=o.component,
            status=o.status,
            duration_ms=o.duration_ms,
            output=o.output[:2000],
        )
        for o in report.outcomes
    )
    for outcome in report.outcomes:
        previous = _transition(outcome.component, outcome.status, outcome.output, report.time)
        if previous is None:
            continue
        if outcome.status == FAIL:
            logger.warning("health: %s is failing: %s", outcome.component, outcome.output)
            signals.health_check_failed.send(
                sender=HealthCheck,
                component=outcome.component,
                status=outcome.status,
                output=outcome.output,
                health_check=run,
            )
        elif previous == FAIL:
            logger.info("health: %s recovered (%s)", outcome.component, outcome.status)
            signals.health_check_recovered.send(
                sender=HealthCheck,
                component=outcome.component,
                status=outcome.status,
                health_check=run,
            )
    signals.system_health_check_performed.send(
        sender=HealthCheck, health_check=run, status=run.status
    )
    return run


def _transition(component: str, status: str, output: str, now: datetime) -> str | None:
    """Record the component's status; return the previous status if this run changed it.

    The conditional UPDATE makes the change visible to exactly one of several concurrent runs.
    A component seen for the first time counts as a change from pass.
    """
    state = ComponentState.objects.filter(component=component).first()
    if state is None:
        try:
            with transaction.atomic():
                ComponentState.objects.create(
                    component=component, status=status, since=now, output=output[:2000]
                )
        except IntegrityError:
            return None  # a concurrent run recorded it first
        return Status.PASS if status != Status.PASS else None
    if state.status == status:
        if state.output != output[:2000]:
            ComponentState.objects.filter(component=component, status=status).update(
                output=output[:2000]
            )
        return None
    changed = ComponentState.objects.filter(component=component, status=state.status).update(
        status=status, since=now, output=output[:2000]
    )
    return state.status if changed else None


def uptime(now: datetime | None = None) -> dict[str, dict[str, float | None]]:
    """{component: {"24h": %, "7d": %, "30d": %}}: up time over the time some run vouches for
    (health.uptime; time with no run is unknown, not up). None: no run in that window."""
    from health.uptime import per_component

    now = now or timezone.now()
    table: dict[str, dict[str, float | None]] = {}
    for label, window in UPTIME_WINDOWS.items():
        for component, measured in per_component(now - window, now).items():
            percent = measured.percent
            table.setdefault(component, {})[label] = None if percent is None else round(percent, 3)
    return table


def cleanup(*, now: datetime | None = None) -> dict[str, int]:
    """Delete runs older than OPS_HEALTH_RETENTION_DAYS, at most 10,000 rows per statement."""
    from opsconsole.retention import delete_in_batches

    cutoff = (now or timezone.now()) - timedelta(days=settings.OPS_HEALTH_RETENTION_DAYS)
    results = delete_in_batches(ComponentResult.objects.filter(created_at__lt=cutoff))
    runs = delete_in_batches(HealthCheck.objects.filter(created_at__lt=cutoff))
    return {"health.ComponentResult": results, "health.HealthCheck": runs}
