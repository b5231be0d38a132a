"""The inbox as a work queue: claims that count attempts, retries, quarantine, time limits.

`InboxEvent` rows are taken by `claim()` (bounded by count and payload bytes), which counts an
attempt on each and commits before any digest work, so an event that kills its worker is still
counted. A failed event waits `OPS_ERRORS_DIGEST_RETRY_DELAY` x attempts; after
`OPS_ERRORS_DIGEST_MAX_ATTEMPTS` it is quarantined with the reason (see errors/digest.py for
how batches and single events are digested).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Length
from django.utils import timezone

from errors.models import InboxEvent
from opsconsole.conf import task_time_limits

logger = logging.getLogger(__name__)
TASK_TIME_LIMIT = "the digest task reached its soft time limit"
INTERRUPTED = "the worker stopped while digesting it (hard time limit, crash or restart)"


class DigestTimeout(Exception):
    """A batch, or one retried event, took longer than OPS_ERRORS_DIGEST_TIME_LIMIT."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise DigestTimeout in this thread once `seconds` have passed.

    SIGALRM interrupts pure-Python work and the regex engine alike (it checks for signals), which
    is where hostile events spend time. Signals exist only for the main thread: elsewhere (tests
    digesting from threads) the Celery task's own time limits remain the bound. An outer timer
    (pytest-timeout, say) is resumed afterwards, or left alone when it is due first.
    """
    if (
        seconds <= 0
        or not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return
    outer_left, outer_interval = signal.getitimer(signal.ITIMER_REAL)
    if outer_left and outer_left <= seconds:
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        cancel_running_statement()
        raise DigestTimeout(
            f"the digest took longer than {seconds:g} s (OPS_ERRORS_DIGEST_TIME_LIMIT)"
        )

    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_left:
            left = outer_left - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001), outer_interval)


def cancel_running_statement() -> None:
    """Ask PostgreSQL to stop the statement a timeout interrupts (libpq's PQcancel, safe in a
    signal handler). Closing the connection alone is not enough: a server process waiting on a
    lock does not notice its client is gone, and keeps the batch's uncommitted rows locked, so
    every later event of the same issues would wait behind it."""
    raw = connection.connection
    if raw is None or connection.vendor != "postgresql":
        return
    try:
        raw.cancel()
    except Exception:  # noqa: BLE001 - best effort: closing the connection follows anyway
        logger.debug("could not cancel the interrupted statement", exc_info=True)


def claim_lease() -> timedelta:
    """How long a claim keeps other workers off an event: longer than the digest task may
    live (Celery kills it at its hard time limit), so only a dead worker's claims expire."""
    return timedelta(seconds=float(task_time_limits()[1]) + 60)


@dataclass
class Claimed:
    pk: int
    attempts: int  # counting this one


def claim(size: int, max_bytes: int) -> tuple[list[Claimed], int]:
    """Take the oldest available events, up to `size` of them and `max_bytes` of payload (at
    least one), counting an attempt on each, committed before any digest work: a worker that
    dies mid-digest (hard time limit, OOM kill) still leaves the attempt counted. Events that
    already had their last attempt are quarantined instead. Returns (claimed, quarantined)."""
    now = timezone.now()
    max_attempts = settings.OPS_ERRORS_DIGEST_MAX_ATTEMPTS
    with transaction.atomic():
        candidates = list(
            InboxEvent.objects.select_for_update(skip_locked=True)
            .filter(Q(available_at__isnull=True) | Q(available_at__lte=now))
            .filter(quarantined_at__isnull=True)
            .order_by("id")
            .values_list("id", "attempts", Length("payload"))[:size]
        )
        exhausted = [pk for pk, attempts, _ in candidates if attempts >= max_attempts]
        taken: list[Claimed] = []
        total = 0
        for pk, attempts, nbytes in candidates:
            if attempts >= max_attempts:
                continue
            if taken and total + (nbytes or 0) > max_bytes:
                break
            taken.append(Claimed(pk, attempts + 1))
            total += nbytes or 0
        if exhausted:
            InboxEvent.objects.filter(pk__in=exhausted).update(quarantined_at=now)
            logger.warning(
                "quarantined %d error event(s) after %d attempts", len(exhausted), max_attempts
            )
        if taken:
            InboxEvent.objects.filter(pk__in=[c.pk for c in taken]).update(
                attempts=F("attempts") + 1,
                available_at=now + claim_lease(),
                # What stays on the row if this worker dies before it can say what happened.
                last_error=INTERRUPTED,
            )
    return taken, len(exhausted)


def failed(pk: int, attempts: int, reason: str) -> None:
    """Record a failed attempt: retry later, or quarantine after the last attempt."""
    now = timezone.now()
    reason = reason[:2000]
    if attempts >= settings.OPS_ERRORS_DIGEST_MAX_ATTEMPTS:
        InboxEvent.objects.filter(pk=pk).update(
            last_error=reason, quarantined_at=now, available_at=None
        )
        logger.warning("quarantined error event row %s after %s attempts: %s", pk, attempts, reason)
    else:
        delay = settings.OPS_ERRORS_DIGEST_RETRY_DELAY * attempts
        InboxEvent.objects.filter(pk=pk).update(
            last_error=reason, available_at=now + timedelta(seconds=delay)
        )


def release(pks: list[int], reason: str, *, attempted: bool) -> None:
    """Give claimed events back at once (the task must stop); the untried get their attempt
    back."""
    if not pks:
        return
    rows = InboxEvent.objects.filter(pk__in=pks)
    if attempted:
        rows.update(available_at=None, last_error=reason)
    else:
        rows.update(available_at=None, attempts=F("attempts") - 1, last_error="")


def after_interruption() -> None:
    # A timeout may have landed inside a database call and left the connection mid-protocol:
    # start the next step on a fresh one (Django reconnects on use).
    if not connection.in_atomic_block:
        connection.close()
