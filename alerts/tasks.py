"""Celery tasks: thin wrappers that take ids and call the services."""

from __future__ import annotations

from celery import shared_task

from . import services
from .delivery import attempt_delivery
from .publishing import DISPATCH_DUE, FLUSH_NOTIFICATION, SEND_SYSTEM_ALERT


# One delivery has its own HTTP/SMTP timeouts; these limits catch anything that hangs past them.
@shared_task(name=SEND_SYSTEM_ALERT, ignore_result=True, soft_time_limit=60, time_limit=90)
def send_system_alert(delivery_id: int) -> str:
    """SendSystemAlert: one delivery attempt; retries are rescheduled by the service with
    exponential backoff, so a failing channel never holds a worker while it waits."""
    delivery = attempt_delivery(delivery_id)
    return delivery.status if delivery is not None else "skipped"


@shared_task(name=FLUSH_NOTIFICATION, ignore_result=True, soft_time_limit=60, time_limit=90)
def flush_notification(notification_id: int) -> int:
    return len(services.flush_notification(notification_id))


@shared_task(name=DISPATCH_DUE, ignore_result=True, soft_time_limit=120, time_limit=150)
def dispatch_due() -> dict[str, int]:
    return services.dispatch_due()
