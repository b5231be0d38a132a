"""Beat's scheduler: schedules declared in code, timing kept as the operator set it, each due
run sent once however many beats run, and a heartbeat so a dead scheduler is noticed.

django-celery-beat writes every entry of CELERY_BEAT_SCHEDULE over its database row at each
beat start, so a schedule an operator retimed in the admin would silently return to the code's
timing at the next deploy. Here an entry that already exists keeps its timing (interval,
crontab, solar or clocked) and its enabled flag; the task, arguments and routing still follow
the code. To take a changed default timing from a new release, delete the entry in the admin:
beat recreates it from the code at its next start.

Two or more beats (on different hosts, for high availability) each find the same entries due.
Before sending, a beat claims the entry in the database until shortly before its next due time
(a conditional UPDATE, or an INSERT that only one beat can win); a beat whose claim fails skips
that run, so each due run is sent once, and when one beat stops the others go on sending on
time. The claim is in the database, not Redis, so it works on every broker and on the embedded
SQLite default alike. When the database cannot be reached the beat sends anyway: every task
here is safe to run twice, and a missed health run is worse than a duplicate.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timedelta
from typing import Any

from celery.schedules import BaseSchedule
from django.conf import settings
from django.db import DatabaseError, IntegrityError, close_old_connections, transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry

from opsconsole.models import ScheduleClaim, SchedulerHeartbeat

logger = logging.getLogger("opsconsole.scheduler")

TIMING_FIELDS = ("interval", "crontab", "solar", "clocked")
# A claim lasts this share of the gap to the entry's next due time: long enough that a second
# beat, whose clock and phase differ a little, finds it held; short enough to lapse before the
# next run.
CLAIM_SHARE = 0.8
# One-off (clocked) entries and schedules whose next time cannot be estimated hold this long.
DEFAULT_CLAIM = 60.0
# How often a beat writes its heartbeat, and how long a stopped beat's row is kept.
HEARTBEAT_EVERY = 5.0
HEARTBEAT_KEPT = timedelta(days=1)


class CodeDeclaredEntry(ModelEntry):
    @classmethod
    def from_entry(cls, name: str, app: Any = None, **entry: Any) -> CodeDeclaredEntry:
        fields = cls._unpack_fields(**entry)
        existing = PeriodicTask._default_manager.filter(name=name).first()
        if existing is None:
            task = PeriodicTask._default_manager.create(name=name, **fields)
        else:
            for field, value in fields.items():
                if field not in TIMING_FIELDS and field != "enabled":
                    setattr(existing, field, value)
            existing.save()
            task = existing
        return cls(task, app=app)


def claim_seconds(schedule: BaseSchedule, now: datetime) -> float:
    """How long a claim on an entry with `schedule`, sent at `now`, is held."""
    try:
        gap = schedule.remaining_estimate(now).total_seconds()
    except Exception:  # clocked and custom schedules; an estimate is not worth failing for
        return DEFAULT_CLAIM
    return max(CLAIM_SHARE * gap, 1.0) if gap > 0 else DEFAULT_CLAIM


def claim(name: str, seconds: float, holder: str, now: datetime | None = None) -> bool:
    """True when this beat may send entry `name`'s current run (no other beat holds it)."""
    now = now or timezone.now()
    until = now + timedelta(seconds=seconds)
    fields = {"until": until, "holder": holder[:255], "claimed_at": now}
    # The UPDATE's condition is evaluated under the row's lock: two beats racing for an
    # expired claim cannot both update it.
    if ScheduleClaim.objects.filter(name=name, until__lte=now).update(**fields):
        return True
    try:
        with transaction.atomic():
            ScheduleClaim.objects.create(name=name, **fields)
    except IntegrityError:
        return False  # held by another beat (or just taken by one)
    return True


def shortest_interval(entries: dict[str, Any], now: datetime) -> float:
    """The shortest gap between two runs of any entry (seconds; DEFAULT_CLAIM when none)."""
    gaps = []
    for entry in entries.values():
        try:
            start = entry.schedule.remaining_estimate(now).total_seconds()
            # Estimated from a run just now: the time until the next one is the full gap.
            gaps.append(start if start > 0 else DEFAULT_CLAIM)
        except Exception:  # noqa: S112  (no estimate: that entry does not shorten the window)
            continue
    return min(gaps, default=DEFAULT_CLAIM)


class OpsScheduler(DatabaseScheduler):
    Entry = CodeDeclaredEntry

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.beat_id = f"{settings.OPS_HOST_NAME}:{os.getpid()}"
        self.started_at = timezone.now()
        self.last_heartbeat = 0.0
        super().__init__(*args, **kwargs)

    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        """Sends `entry` unless another beat already claimed this run of it."""
        try:
            close_old_connections()
            mine = claim(entry.name, claim_seconds(entry.schedule, timezone.now()), self.beat_id)
        except DatabaseError as exc:
            logger.warning("could not claim %s (%s); sending it anyway", entry.name, exc)
            mine = True
        if not mine:
            logger.info("Scheduler: %s was sent by another beat", entry.name)
            return
        # By keyword: sentry-sdk's beat integration wraps this method as (scheduler, entry).
        super().apply_entry(entry, producer=producer)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        delay = super().tick(*args, **kwargs)
        if time.monotonic() - self.last_heartbeat >= HEARTBEAT_EVERY:
            self.write_heartbeat()
        return float(delay)

    def write_heartbeat(self) -> None:
        self.last_heartbeat = time.monotonic()
        now = timezone.now()
        try:
            close_old_connections()
            SchedulerHeartbeat.objects.update_or_create(
                beat=self.beat_id[:255],
                defaults={
                    "host": settings.OPS_HOST_NAME[:255],
                    "started_at": self.started_at,
                    "last_tick": now,
                    "shortest_interval": shortest_interval(self._schedule or {}, now),
                },
            )
            SchedulerHeartbeat.objects.filter(last_tick__lt=now - HEARTBEAT_KEPT).delete()
        except DatabaseError as exc:
            logger.warning("could not record the scheduler heartbeat: %s", type(exc).__name__)

    def close(self) -> None:
        """A beat that stops cleanly removes its heartbeat; a killed one ages out."""
        super().close()
        try:
            SchedulerHeartbeat.objects.filter(beat=self.beat_id[:255]).delete()
        except DatabaseError:
            logger.info("could not remove this beat's heartbeat; it will age out")
