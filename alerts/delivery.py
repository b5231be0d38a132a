"""One delivery attempt, its outcome in the log, and the retry schedule (exponential backoff)."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from .channels import Outcome, send
from .models import Delivery
from .publishing import SEND_SYSTEM_ALERT, publish

logger = logging.getLogger(__name__)

# A delivery left "sending" this long belonged to a worker that died mid-attempt.
STALE_SENDING = timedelta(minutes=10)


def backoff(attempts: int) -> timedelta:
    """Wait before attempt n+1: base, 2x base, 4x base... capped."""
    base = settings.ALERTS_RETRY_BACKOFF
    return min(base * (2 ** max(attempts - 1, 0)), settings.ALERTS_RETRY_BACKOFF_MAX)


def attempt_delivery(delivery_id: int, *, now: datetime | None = None) -> Delivery | None:
    """Claim the delivery if it is due, send it, log the outcome, schedule a retry if needed.

    Returns None when there was nothing to do (already delivered, not due, claimed elsewhere).
    """
    now = now or timezone.now()
    if not _claim(delivery_id, now):
        return None
    delivery = Delivery.objects.select_related("channel", "notification").get(pk=delivery_id)
    started = time.perf_counter()
    outcome = _send(delivery)
    delivery.duration_ms = int((time.perf_counter() - started) * 1000)
    _record(delivery, outcome, now)
    delivery.save()
    if delivery.status == Delivery.Status.RETRYING:
        publish(SEND_SYSTEM_ALERT, (delivery.pk,), backoff(delivery.attempts).total_seconds())
    return delivery


def _claim(delivery_id: int, now: datetime) -> bool:
    """One conditional UPDATE: a due delivery, or one a dead worker left "sending"."""
    return bool(
        Delivery.objects.filter(pk=delivery_id)
        .filter(
            Q(
                status__in=[Delivery.Status.PENDING, Delivery.Status.RETRYING],
                next_attempt_at__lte=now,
            )
            | Q(status=Delivery.Status.SENDING, last_attempt_at__lte=now - STALE_SENDING)
        )
        .update(status=Delivery.Status.SENDING, attempts=F("attempts") + 1, last_attempt_at=now)
    )


def _send(delivery: Delivery) -> Outcome:
    try:
        if not delivery.channel.enabled and not delivery.notification.is_test:
            return Outcome(ok=False, error="the channel was disabled before delivery")
        return send(delivery.channel, delivery.notification)
    except Exception as exc:  # a rendering bug must still end up in the log, not in limbo
        logger.exception("delivery %s crashed", delivery.pk)
        return Outcome(ok=False, error=f"internal error: {type(exc).__name__}: {exc}")


def _record(delivery: Delivery, outcome: Outcome, now: datetime) -> None:
    """The outcome in the log, and what comes next: done, a retry after backoff, or failed."""
    delivery.response_code = outcome.response_code
    delivery.error = outcome.error[:2000]
    if outcome.ok:
        delivery.status = Delivery.Status.DELIVERED
        delivery.delivered_at = timezone.now()
        delivery.next_attempt_at = None
    elif outcome.retryable and delivery.attempts < settings.ALERTS_MAX_ATTEMPTS:
        delivery.status = Delivery.Status.RETRYING
        delivery.next_attempt_at = now + backoff(delivery.attempts)
    else:
        delivery.status = Delivery.Status.FAILED
        delivery.next_attempt_at = None
        logger.warning(
            "alert delivery %s to channel %s failed for good: %s",
            delivery.pk,
            delivery.channel.name,
            outcome.error,
        )
