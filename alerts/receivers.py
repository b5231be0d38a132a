"""Turn the other apps' signals into alerts.

A receiver never raises into the sender: a backup or a health check must finish whatever
happens here. Work is done in a savepoint, so a failure here cannot spoil the sender's
transaction either; the failure is logged instead.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.dispatch import receiver

from backups.signals import backup_completed, backup_failed, backup_verified
from errors.signals import critical_error_occurred, issue_resolved
from health.signals import health_check_failed, health_check_recovered
from maintenance.signals import maintenance_window_ended, maintenance_window_started
from metrics.signals import (
    host_missing,
    host_recovered,
    performance_threshold_exceeded,
    performance_threshold_recovered,
)

from . import services
from .models import Kind, Severity

logger = logging.getLogger(__name__)


def never_raises(func: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(func)
    def wrapper(sender: Any, **kwargs: Any) -> None:
        try:
            func(sender, **kwargs)
        except Exception:
            logger.exception("alerts: %s could not record an alert", func.__name__)

    return wrapper


def _event_ttl() -> timedelta:
    # An event without a clearing signal stays "firing" (deduplicated) for one repeat interval.
    return settings.ALERTS_REPEAT_INTERVAL


@receiver(health_check_failed, dispatch_uid="alerts-health-failed")
@never_raises
def on_health_check_failed(
    sender: Any, *, component: str, status: str, output: str = "", **kwargs: Any
) -> None:
    services.fire(
        f"health:{component}",
        kind=Kind.HEALTH,
        severity=Severity.CRITICAL,
        summary=f"Health check {component} is failing: {output or status}",
        url=f"/health/{component}",
        details={"component": component, "status": status, "output": output[:2000]},
    )


@receiver(health_check_recovered, dispatch_uid="alerts-health-recovered")
@never_raises
def on_health_check_recovered(sender: Any, *, component: str, **kwargs: Any) -> None:
    services.resolve(f"health:{component}")


@receiver(performance_threshold_exceeded, dispatch_uid="alerts-threshold-exceeded")
@never_raises
def on_threshold_exceeded(
    sender: Any,
    *,
    metric: str,
    host: str,
    level: str,
    value: float,
    threshold: float,
    unit: str = "",
    **kwargs: Any,
) -> None:
    severity = Severity.CRITICAL if level == "critical" else Severity.WARNING
    services.fire(
        f"threshold:{metric}:{host}",
        kind=Kind.PERFORMANCE,
        severity=severity,
        summary=f"{metric} on {host} is {value:g}{unit} ({level}, threshold {threshold:g}{unit})",
        details={
            "metric": metric,
            "host": host,
            "level": level,
            "value": value,
            "threshold": threshold,
            "unit": unit,
        },
    )


@receiver(host_missing, dispatch_uid="alerts-host-missing")
@never_raises
def on_host_missing(
    sender: Any, *, host: str, last_seen: Any, missing_after: float, **kwargs: Any
) -> None:
    services.fire(
        f"host:{host}:missing",
        kind=Kind.SYSTEM,
        severity=Severity.CRITICAL,
        summary=f"host {host} stopped reporting (last sample {last_seen:%Y-%m-%d %H:%M:%S} UTC)",
        url="/console/metrics/",
        details={"host": host, "last_seen": last_seen.isoformat(), "missing_after": missing_after},
    )


@receiver(host_recovered, dispatch_uid="alerts-host-recovered")
@never_raises
def on_host_recovered(sender: Any, *, host: str, **kwargs: Any) -> None:
    services.resolve(f"host:{host}:missing")


@receiver(performance_threshold_recovered, dispatch_uid="alerts-threshold-recovered")
@never_raises
def on_threshold_recovered(sender: Any, *, metric: str, host: str, **kwargs: Any) -> None:
    services.resolve(f"threshold:{metric}:{host}")


@receiver(critical_error_occurred, dispatch_uid="alerts-critical-error")
@never_raises
def on_critical_error(
    sender: Any,
    *,
    issue_id: int,
    project: str,
    title: str,
    severity: str,
    reason: str,
    url: str = "",
    count: int = 1,
    **kwargs: Any,
) -> None:
    critical = reason == "critical" or severity in {"fatal", "critical"}
    services.fire(
        f"errors:issue:{issue_id}",
        kind=Kind.SYSTEM,
        severity=Severity.CRITICAL if critical else Severity.WARNING,
        summary=f"[{project}] {title} ({reason.replace('_', ' ')}, {count} events)",
        url=url,
        details={
            "issue_id": issue_id,
            "project": project,
            "reason": reason,
            "severity": severity,
            "count": count,
        },
        expires_in=_event_ttl(),
    )


@receiver(issue_resolved, dispatch_uid="alerts-issue-resolved")
@never_raises
def on_issue_resolved(sender: Any, *, issue_id: int, **kwargs: Any) -> None:
    services.resolve(f"errors:issue:{issue_id}")


@receiver(backup_verified, dispatch_uid="alerts-backup-verified")
@never_raises
def on_backup_verified(sender: Any, **kwargs: Any) -> None:
    services.resolve("backup:verify")


@receiver(backup_completed, dispatch_uid="alerts-backup-completed")
@never_raises
def on_backup_completed(
    sender: Any, *, backup_id: int, kind: str, size: int, duration: float, **kwargs: Any
) -> None:
    services.resolve("backup:failed")
    services.fire(
        f"backup:completed:{backup_id}",
        kind=Kind.BACKUP_COMPLETED,
        severity=Severity.INFO,
        summary=f"{kind} backup #{backup_id} completed: {size:,} bytes in {duration:.1f} s",
        details={"backup_id": backup_id, "kind": kind, "size": size, "duration": duration},
        expires_in=timedelta(0),  # told once, then history
    )


@receiver(backup_failed, dispatch_uid="alerts-backup-failed")
@never_raises
def on_backup_failed(
    sender: Any, *, backup_id: int | None, kind: str, reason: str, phase: str, **kwargs: Any
) -> None:
    verify = phase == "verify"
    what = f"backup #{backup_id}" if backup_id is not None else f"{kind} backup"
    services.fire(
        "backup:verify" if verify else "backup:failed",
        kind=Kind.BACKUP_FAILED,
        severity=Severity.CRITICAL,
        summary=f"{what} failed during {phase}: {reason}",
        details={"backup_id": backup_id, "kind": kind, "reason": reason[:2000], "phase": phase},
        # Nothing announces a good verification, so that alert clears on its own.
        expires_in=_event_ttl() if verify else None,
    )


@receiver(maintenance_window_started, dispatch_uid="alerts-window-started")
@never_raises
def on_window_started(
    sender: Any,
    *,
    window_id: int,
    message: str = "",
    silence_keys: list[str] | None = None,
    ends_at: Any = None,
    **kwargs: Any,
) -> None:
    until = f" until {ends_at:%Y-%m-%d %H:%M %Z}" if ends_at is not None else ""
    services.fire(
        f"maintenance:window:{window_id}",
        kind=Kind.SYSTEM,
        severity=Severity.INFO,
        summary=f"Maintenance window started{until}: {message}".rstrip(": "),
        url=f"/admin/maintenance/maintenancewindow/{window_id}/change/",
        details={"window_id": window_id, "silence_keys": list(silence_keys or [])},
    )


@receiver(maintenance_window_ended, dispatch_uid="alerts-window-ended")
@never_raises
def on_window_ended(sender: Any, *, window_id: int, **kwargs: Any) -> None:
    services.resolve(f"maintenance:window:{window_id}")
