"""Celery tasks: thin callers of errors.services."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.signals import worker_ready

from errors import services
from errors.capture import drain_spool
from errors.queueing import DIGEST_TASK
from opsconsole.conf import task_time_limits

# The Celery app's global time limits apply (ours when the host's app sets none); the task
# stops starting batches at half its soft limit and hands the rest of a backlog to a new task.
SOFT_LIMIT, HARD_LIMIT = task_time_limits()


@shared_task(
    name=DIGEST_TASK,
    ignore_result=True,
    soft_time_limit=SOFT_LIMIT,
    time_limit=HARD_LIMIT,
)
def digest_inbox() -> int:
    """Digest accepted events (and our own spooled ones) into issues and reports."""
    drain_spool()
    done, more = services.digest_for_seconds(SOFT_LIMIT / 2)
    if more:
        digest_inbox.delay()
    return done


@worker_ready.connect
def _digest_on_start(sender: Any = None, **kwargs: Any) -> None:
    # Events accepted while no worker was running are digested as soon as one starts.
    digest_inbox.delay()
