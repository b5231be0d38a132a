"""The queues app's verbs: retry and discard failed tasks, and retention."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from health.checks import reason
from opsconsole import audit
from opsconsole.retention import delete_in_batches
from queues.models import TaskFailure, TaskHour, TaskMinute


@dataclass
class Outcome:
    failure: TaskFailure
    ok: bool
    message: str
    new_task_id: str = ""


def _actor_name(actor: Any) -> str:
    return actor if isinstance(actor, str) else str(getattr(actor, "username", "") or "system")


def why_not_retriable(failure: TaskFailure) -> str:
    """Why the console will not send `failure` again ("" when it can)."""
    if failure.state != TaskFailure.State.FAILED:
        return f"it was already {failure.get_state_display()}"
    if not failure.raw_arguments:
        return (
            "its arguments could not be kept whole (too large or not JSON): sending the "
            "scrubbed or truncated copy would run the task with wrong arguments"
        )
    return ""


def retry(failure_id: int, *, actor: Any) -> Outcome:
    """Send the failed task again, by name, with its original arguments, to its queue.

    The failure is locked while it is sent, so two operators retrying at once send it once.
    """
    from opsconsole.celery import app

    with transaction.atomic():
        failure = TaskFailure.objects.select_for_update().get(pk=failure_id)
        refusal = why_not_retriable(failure)
        sent = None
        if refusal:
            outcome = Outcome(failure, False, f"Task {failure} was not retried: {refusal}.")
        else:
            raw = json.loads(failure.raw_arguments)
            try:
                sent = app.send_task(
                    failure.task_name,
                    args=raw["args"],
                    kwargs=raw["kwargs"],
                    queue=failure.queue or None,  # empty: the task's default routing
                )
            except Exception as exc:
                sent = None
                outcome = Outcome(
                    failure, False, f"Task {failure} could not be sent: {reason(exc)}."
                )
        if sent is not None:
            failure.state = TaskFailure.State.RETRIED
            failure.retried_as = str(sent.id)
            failure.raw_arguments = ""  # only kept for this retry
            failure.handled_at = timezone.now()
            failure.handled_by = _actor_name(actor)
            failure.save(
                update_fields=["state", "retried_as", "raw_arguments", "handled_at", "handled_by"]
            )
            outcome = Outcome(
                failure, True, f"Task {failure} was sent again as {sent.id}.", sent.id
            )
    audit.record(
        "queues.retry_task",
        actor=actor,
        target=f"queues.taskfailure:{failure.pk}",
        result="success" if outcome.ok else "failure",
        details={
            "task_name": failure.task_name,
            "task_id": failure.task_id,
            "queue": failure.queue,
            "retried_as": outcome.new_task_id,
            "message": outcome.message,
        },
    )
    return outcome


def discard(failure_id: int, *, actor: Any) -> Outcome:
    """Mark the failure as handled without running it again; its kept arguments are deleted."""
    with transaction.atomic():
        failure = TaskFailure.objects.select_for_update().get(pk=failure_id)
        if failure.state != TaskFailure.State.FAILED:
            outcome = Outcome(
                failure, False, f"Task {failure} was already {failure.get_state_display()}."
            )
        else:
            failure.state = TaskFailure.State.DISCARDED
            failure.raw_arguments = ""
            failure.handled_at = timezone.now()
            failure.handled_by = _actor_name(actor)
            failure.save(update_fields=["state", "raw_arguments", "handled_at", "handled_by"])
            outcome = Outcome(failure, True, f"Task {failure} was discarded.")
    audit.record(
        "queues.discard_task",
        actor=actor,
        target=f"queues.taskfailure:{failure.pk}",
        result="success" if outcome.ok else "failure",
        details={"task_name": failure.task_name, "task_id": failure.task_id},
    )
    return outcome


def cleanup(*, now: datetime | None = None) -> dict[str, int]:
    """Failures and per-minute figures older than OPS_QUEUES_RETENTION_DAYS, in batches (the
    daily upkeep's retention step calls every app's `cleanup`)."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.OPS_QUEUES_RETENTION_DAYS)
    return {
        "TaskFailure": delete_in_batches(TaskFailure.objects.filter(failed_at__lt=cutoff)),
        "TaskMinute": delete_in_batches(TaskMinute.objects.filter(minute__lt=cutoff)),
        "TaskHour": delete_in_batches(TaskHour.objects.filter(hour__lt=cutoff)),
    }
