"""Daily and weekly upkeep: run each step, record it in a MaintenanceRun, keep going on failure.

Two workers running the same job at once do the work once: the job first takes a lease in
MaintenanceLock with a conditional UPDATE (or the INSERT that creates it); whoever does not
get it returns `skipped` without touching anything.
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from maintenance import steps
from maintenance.models import MaintenanceLock, MaintenanceRun
from opsconsole import audit

logger = logging.getLogger(__name__)

Step = Callable[[datetime], dict[str, Any]]

DAILY_STEPS: list[tuple[str, Step]] = [
    ("purge_expired_cache", steps.purge_expired_cache),
    ("optimize_database", steps.optimize_database),
    ("retention_cleanup", steps.retention_cleanup),
    ("clean_temp_files", steps.clean_temp_files),
    ("rotate_logs", steps.rotate_logs),
]
WEEKLY_STEPS: list[tuple[str, Step]] = [
    ("backup", steps.backup_and_verify),
    ("update_statistics", steps.update_statistics),
]
STEPS = {"daily": DAILY_STEPS, "weekly": WEEKLY_STEPS}
LEASE = timedelta(hours=6)


@dataclass
class StepResult:
    step: str
    status: str
    duration_ms: int
    counts: dict[str, Any] = field(default_factory=dict)
    error: str = ""


@dataclass
class RunResult:
    kind: str
    status: str  # success, failed (some step failed) or skipped (another run holds the lease)
    run_id: str | None = None
    steps: list[StepResult] = field(default_factory=list)
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def acquire_lease(name: str, holder: str, *, now: datetime, lease: timedelta = LEASE) -> bool:
    """Take the named lease unless someone else holds an unexpired one."""
    expires = now + lease
    taken = MaintenanceLock.objects.filter(
        Q(name=name) & (Q(holder="") | Q(expires_at__lte=now) | Q(expires_at__isnull=True))
    ).update(holder=holder, acquired_at=now, expires_at=expires)
    if taken:
        return True
    try:
        with transaction.atomic():
            MaintenanceLock.objects.create(
                name=name, holder=holder, acquired_at=now, expires_at=expires
            )
    except IntegrityError:  # the row exists and is held by someone else
        return False
    return True


def release_lease(name: str, holder: str) -> None:
    MaintenanceLock.objects.filter(name=name, holder=holder).update(holder="", expires_at=None)


def run(
    kind: str,
    *,
    actor: Any = "system",
    now: datetime | None = None,
    only: list[str] | None = None,
    on_step: Callable[[StepResult], None] | None = None,
) -> RunResult:
    """Run the daily or weekly upkeep. `only` limits it to the named steps."""
    if kind not in STEPS:
        raise ValueError(f"unknown maintenance kind {kind!r}: use daily or weekly")
    plan = [(name, fn) for name, fn in STEPS[kind] if only is None or name in only]
    holder = uuid.uuid4().hex
    lock_name = f"upkeep:{kind}"
    if not acquire_lease(lock_name, holder, now=timezone.now()):
        holder_row = MaintenanceLock.objects.filter(name=lock_name).first()
        since = holder_row.acquired_at.isoformat() if holder_row and holder_row.acquired_at else "?"
        reason = f"another {kind} maintenance run is in progress (since {since})"
        logger.info(reason)
        return RunResult(kind=kind, status="skipped", reason=reason)
    # Holding the lease, any step of this kind still "running" belongs to a worker that died.
    MaintenanceRun.objects.filter(kind=kind, status=MaintenanceRun.Status.RUNNING).update(
        status=MaintenanceRun.Status.FAILED,
        finished_at=timezone.now(),
        error="interrupted: the worker stopped before the step finished",
    )
    run_id = uuid.UUID(holder)
    actor_name = actor if isinstance(actor, str) else getattr(actor, "username", "system")
    result = RunResult(kind=kind, status="success", run_id=str(run_id))
    try:
        for name, fn in plan:
            step = _run_step(run_id, kind, name, fn, now=now, triggered_by=str(actor_name))
            result.steps.append(step)
            if on_step is not None:
                on_step(step)
            if step.status == MaintenanceRun.Status.FAILED:
                result.status = "failed"
    finally:
        release_lease(lock_name, holder)
    audit.record(
        f"maintenance.run_{kind}",
        actor=actor,
        target=f"run:{run_id}",
        result="success" if result.status == "success" else "failure",
        details={
            "steps": {s.step: s.status for s in result.steps},
            "failed": [
                f"{s.step}: {s.error.splitlines()[0] if s.error else ''}"
                for s in result.steps
                if s.status == "failed"
            ],
        },
    )
    return result


def _run_step(
    run_id: uuid.UUID,
    kind: str,
    name: str,
    fn: Step,
    *,
    now: datetime | None,
    triggered_by: str,
) -> StepResult:
    record = MaintenanceRun.objects.create(
        run_id=run_id, kind=kind, step=name, started_at=timezone.now(), triggered_by=triggered_by
    )
    began = time.monotonic()
    status = MaintenanceRun.Status.SUCCESS
    error = ""
    counts: dict[str, Any] = {}
    try:
        counts = fn(now or timezone.now()) or {}
    except steps.StepSkipped as skipped:
        status = MaintenanceRun.Status.SKIPPED
        counts = {"reason": str(skipped)}
    except Exception as exc:
        # One broken step is reported and the others still run.
        status = MaintenanceRun.Status.FAILED
        error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
        counts = getattr(exc, "counts", {}) or {}
        logger.exception("maintenance step %s failed", name)
    if status == MaintenanceRun.Status.SUCCESS and counts.get("errors"):
        status = MaintenanceRun.Status.FAILED
        error = "; ".join(str(e) for e in counts["errors"])
    duration_ms = int((time.monotonic() - began) * 1000)
    MaintenanceRun.objects.filter(pk=record.pk).update(
        status=status,
        finished_at=timezone.now(),
        duration_ms=duration_ms,
        counts=counts,
        error=error,
    )
    return StepResult(step=name, status=status, duration_ms=duration_ms, counts=counts, error=error)
