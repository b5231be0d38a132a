"""Queueing the alerts' Celery tasks by name, so the verbs never import the task module.

Publishing never raises: a message lost to a broker outage is caught up by the periodic
dispatcher (`services.dispatch_due`), and a late duplicate is harmless because every task
starts with a conditional claim.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from opsconsole.publish import send_task_bounded

logger = logging.getLogger(__name__)

# The names the tasks are registered under (alerts.tasks declares them with these).
SEND_SYSTEM_ALERT = "alerts.tasks.send_system_alert"
FLUSH_NOTIFICATION = "alerts.tasks.flush_notification"
DISPATCH_DUE = "alerts.tasks.dispatch_due"


def publish(task_name: str, args: tuple[Any, ...], countdown: float = 0) -> None:
    """Queue `task_name` now; a broker that cannot take it is logged, not raised."""
    try:
        # Often called from a request (a health run, a threshold, an admin action): a broker
        # that is down must not hold it for Celery's seconds of publish retries.
        send_task_bounded(task_name, args, countdown=max(countdown, 0))
    except Exception:
        logger.warning("could not queue %s%s; the dispatcher will pick it up", task_name, args)


def publish_on_commit(task_name: str, args: tuple[Any, ...], countdown: float = 0) -> None:
    """Queue `task_name` once the current transaction commits (never, if it rolls back)."""
    transaction.on_commit(lambda: publish(task_name, args, countdown), robust=True)
