"""The alert verbs: fire, resolve, group and flush notifications, the periodic dispatcher, cleanup.

Every state change is a conditional UPDATE or happens under a row lock, so any number of
workers, beat and countdown tasks can run these at once: whoever claims a row does the work,
the others find nothing to do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from opsconsole.retention import delete_in_batches

from .delivery import attempt_delivery
from .models import Alert, Channel, Delivery, Kind, Notification, Severity, Silence
from .notifications import notification_for
from .publishing import FLUSH_NOTIFICATION, SEND_SYSTEM_ALERT, publish, publish_on_commit
from .routing import absolute_url, wants
from .suppression import Suppressor, suppression_reason

logger = logging.getLogger(__name__)


def group_wait() -> timedelta:
    return settings.ALERTS_GROUP_WAIT


def repeat_interval() -> timedelta:
    return settings.ALERTS_REPEAT_INTERVAL


# --- firing and resolving ----------------------------------------------------------------------
def _needs_telling(alert: Alert, now: datetime) -> bool:
    if alert.pending_id is not None:
        return False
    if alert.last_notified_at is None:
        return True
    if alert.severity > (alert.notified_severity or 0):
        return True  # escalation is news, whatever the repeat interval says
    return alert.last_notified_at <= now - repeat_interval()


def _join_group(alert: Alert, now: datetime) -> Notification:
    """Put `alert` in the open notification of its kind, opening one if there is none."""
    for _ in range(5):
        # The row lock makes a concurrent claim wait for our commit, so it sees this alert;
        # if the claim won, the row no longer matches "open" and we open a new group.
        group = (
            Notification.objects.select_for_update()
            .filter(kind=alert.kind, status=Notification.Status.OPEN, is_test=False)
            .first()
        )
        if group is not None:
            alert.pending = group
            return group
        try:
            with transaction.atomic():
                group = Notification.objects.create(
                    kind=alert.kind, created_at=now, send_at=now + group_wait()
                )
        except IntegrityError:
            continue  # another worker opened it a moment ago: join that one
        publish_on_commit(FLUSH_NOTIFICATION, (group.pk,), group_wait().total_seconds())
        alert.pending = group
        return group
    raise RuntimeError(f"could not find or open a notification group for {alert.kind}")


@dataclass(frozen=True)
class _Firing:
    """What one signal says about a key: the fields every firing writes, and when."""

    key: str
    severity: int
    summary: str
    payload: dict[str, Any]
    expires_at: datetime | None
    now: datetime

    def fields(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "summary": self.summary,
            "payload": self.payload,
            "expires_at": self.expires_at,
        }


def fire(
    key: str,
    *,
    severity: int = Severity.WARNING,
    summary: str,
    kind: str = Kind.SYSTEM,
    url: str = "",
    details: dict[str, Any] | None = None,
    expires_in: timedelta | None = None,
    now: datetime | None = None,
) -> Alert | None:
    """Record that `key` is firing; tell the channels if that is news (dedup, repeat, silences).

    Returns the alert, or None when the signal was only counted on an alert that is already
    queued or recently told (the storm path). `expires_in` marks an event without a clearing
    signal: it resolves quietly that long after it last fired.
    """
    key = key.strip()
    if not key or len(key) > 255:
        raise ValueError("an alert key must be 1 to 255 characters")
    now = now or timezone.now()
    firing = _Firing(
        key=key,
        severity=severity,
        summary=summary[:1000],
        payload={"url": url, "details": details or {}},
        expires_at=now + expires_in if expires_in is not None else None,
        now=now,
    )
    if _count_when_already_told(firing):
        return None
    with transaction.atomic():
        alert = Alert.objects.select_for_update().filter(key=key, state=Alert.State.FIRING).first()
        if alert is None:
            inserted = _insert_alert(firing, kind)
            if inserted is not None:
                return inserted
            # Another worker inserted it first (a group we opened is sent empty).
            alert = Alert.objects.select_for_update().get(key=key, state=Alert.State.FIRING)
        _refire(alert, firing)
        if _needs_telling(alert, now):
            _join_unless_muted(alert, now)
        alert.save()
    return alert


def _count_when_already_told(firing: _Firing) -> bool:
    """The storm path: a firing alert that is already queued, or was told recently at this
    severity or higher, is only counted: one UPDATE, no lock held across statements."""
    return bool(
        Alert.objects.filter(key=firing.key, state=Alert.State.FIRING)
        .filter(
            Q(pending__isnull=False)
            | Q(
                last_notified_at__gt=firing.now - repeat_interval(),
                notified_severity__gte=firing.severity,
            )
        )
        .update(occurrences=F("occurrences") + 1, last_fired_at=firing.now, **firing.fields())
    )


def _insert_alert(firing: _Firing, kind: str) -> Alert | None:
    """A new alert, muted or grouped before the INSERT so one statement writes it.

    None when another worker inserted the key first.
    """
    alert = Alert(
        key=firing.key,
        kind=kind,
        first_fired_at=firing.now,
        last_fired_at=firing.now,
        **firing.fields(),
    )
    _join_unless_muted(alert, firing.now)
    try:
        with transaction.atomic():
            alert.save(force_insert=True)
    except IntegrityError:
        return None
    return alert


def _join_unless_muted(alert: Alert, now: datetime) -> None:
    """Record what mutes the alert now; if nothing does, put it in its kind's open group."""
    alert.suppressed_by = suppression_reason(alert.key, now)
    if not alert.suppressed_by:
        _join_group(alert, now)


def _refire(alert: Alert, firing: _Firing) -> None:
    alert.occurrences += 1
    alert.last_fired_at = firing.now
    alert.severity = firing.severity
    alert.summary = firing.summary
    alert.payload = firing.payload
    alert.expires_at = firing.expires_at


def resolve(key: str, *, now: datetime | None = None) -> Alert | None:
    """The condition behind `key` cleared: one resolved notice, if the firing was ever told."""
    now = now or timezone.now()
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update()
            .filter(key=key.strip(), state=Alert.State.FIRING)
            .first()
        )
        if alert is None:
            return None
        alert.state = Alert.State.RESOLVED
        alert.resolved_at = now
        if alert.last_notified_at is None:
            # Never told (still inside the group wait, or muted): nothing to take back.
            alert.pending = None
        elif alert.pending_id is None:
            _join_group(alert, now)
        alert.save()
    return alert


# --- sending a group ---------------------------------------------------------------------------
def _snapshot(alert: Alert, state: str) -> dict[str, Any]:
    return {
        "id": alert.pk,
        "key": alert.key,
        "state": state,
        "severity": alert.severity,
        "severity_name": alert.severity_name,
        "summary": alert.summary,
        "url": absolute_url(alert.url or f"/admin/alerts/alert/{alert.pk}/change/"),
        "details": alert.payload.get("details") or {},
        "occurrences": alert.occurrences,
        "first_fired_at": alert.first_fired_at.isoformat(),
        "last_fired_at": alert.last_fired_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
    }


def flush_notification(notification_id: int, *, now: datetime | None = None) -> list[int]:
    """Send an open group whose wait is over: snapshot its alerts, one Delivery per channel.

    Returns the ids of the deliveries created (none if another worker got here first).
    """
    now = now or timezone.now()
    with transaction.atomic():
        claimed = Notification.objects.filter(
            pk=notification_id, status=Notification.Status.OPEN, send_at__lte=now
        ).update(status=Notification.Status.SENDING)
        if not claimed:
            return []
        group = Notification.objects.get(pk=notification_id)
        items = _take_alerts_out(group, now)
        if not items:
            group.status = Notification.Status.EMPTY
            group.save(update_fields=["status"])
            return []
        group.items = items
        group.title = notification_for(group.kind, items).title()[:300]
        group.status = Notification.Status.SENT
        group.sent_at = now
        group.save(update_fields=["items", "title", "status", "sent_at"])
        return _create_deliveries(group, Channel.objects.filter(enabled=True), now)


def _take_alerts_out(group: Notification, now: datetime) -> list[dict[str, Any]]:
    """Empty the group and snapshot the alerts it tells, marking them told."""
    alerts = Alert.objects.select_for_update().filter(pending=group).order_by("-severity", "key")
    suppressor = Suppressor(now)
    items: list[dict[str, Any]] = []
    for alert in list(alerts):
        alert.pending = None
        alert.suppressed_by = suppressor.reason(alert.key)
        if alert.suppressed_by:
            pass  # muted since it joined: recorded, not told
        elif alert.state == Alert.State.FIRING:
            items.append(_snapshot(alert, Alert.State.FIRING))
            alert.last_notified_at = now
            alert.notified_severity = alert.severity
        else:
            items.append(_snapshot(alert, Alert.State.RESOLVED))
            alert.resolved_notified_at = now
        alert.save(
            update_fields=[
                "pending",
                "suppressed_by",
                "last_notified_at",
                "notified_severity",
                "resolved_notified_at",
            ]
        )
    return items


def _create_deliveries(group: Notification, channels: Any, now: datetime) -> list[int]:
    ids = []
    for channel in channels:
        if any(wants(channel, item) for item in group.items):
            delivery = Delivery.objects.create(
                notification=group, channel=channel, created_at=now, next_attempt_at=now
            )
            ids.append(delivery.pk)
            publish_on_commit(SEND_SYSTEM_ALERT, (delivery.pk,))
    return ids


def send_test_notification(channel: Channel, *, now: datetime | None = None) -> Delivery:
    """A one-item notification to one channel, attempted right away (admin action)."""
    now = now or timezone.now()
    item: dict[str, Any] = {
        "id": None,
        "key": "test:channel",
        "state": Alert.State.FIRING,
        "severity": max(channel.min_severity, Severity.INFO),
        "severity_name": str(Severity(max(channel.min_severity, Severity.INFO)).label),
        "summary": f"Test notification for channel {channel.name}: delivery works.",
        "url": absolute_url(f"/admin/alerts/channel/{channel.pk}/change/"),
        "details": {},
        "occurrences": 1,
        "first_fired_at": now.isoformat(),
        "last_fired_at": now.isoformat(),
        "resolved_at": None,
    }
    group = Notification.objects.create(
        kind=Kind.SYSTEM,
        status=Notification.Status.SENT,
        created_at=now,
        send_at=now,
        sent_at=now,
        items=[item],
        is_test=True,
        title=f"[TEST] {channel.name}",
    )
    delivery = Delivery.objects.create(
        notification=group, channel=channel, created_at=now, next_attempt_at=now
    )
    # One attempt now, so the operator sees the outcome; retries follow like any delivery.
    attempt_delivery(delivery.pk, now=now)
    delivery.refresh_from_db()
    return delivery


# --- the periodic dispatcher -------------------------------------------------------------------
def dispatch_due(*, now: datetime | None = None, batch: int = 500) -> dict[str, int]:
    """Beat job (every few seconds): expire events, queue repeats and unmuted alerts, send due
    groups, requeue deliveries whose message was lost. Idempotent; safe with two workers."""
    now = now or timezone.now()
    return {
        "expired": _expire_events(now),
        "queued": _queue_due_alerts(now, batch),
        "flushed": _flush_due_groups(now),
        "requeued": _requeue_lost_deliveries(now, batch),
    }


def _expire_events(now: datetime) -> int:
    """Events without a clearing signal resolve quietly once their time is up."""
    return Alert.objects.filter(
        state=Alert.State.FIRING, expires_at__lte=now, pending__isnull=True
    ).update(state=Alert.State.RESOLVED, resolved_at=now)


def _queue_due_alerts(now: datetime, batch: int) -> int:
    """Never told, due a repeat, or escalated: into a group unless muted. Returns how many."""
    due = (
        Alert.objects.firing()
        .filter(pending__isnull=True)
        .filter(
            Q(last_notified_at__isnull=True)
            | Q(last_notified_at__lte=now - repeat_interval())
            | Q(severity__gt=F("notified_severity"))
        )
    )
    suppressor = Suppressor(now)
    queued = 0
    with transaction.atomic():
        for alert in due.select_for_update(skip_locked=True).order_by("pk")[:batch]:
            reason = suppressor.reason(alert.key)
            if reason:
                if alert.suppressed_by != reason:
                    alert.suppressed_by = reason
                    alert.save(update_fields=["suppressed_by"])
                continue
            alert.suppressed_by = ""
            _join_group(alert, now)
            alert.save(update_fields=["pending", "suppressed_by"])
            queued += 1
    return queued


def _flush_due_groups(now: datetime) -> int:
    """Send the groups whose wait is over; one another worker sent meanwhile counts too."""
    flushed = 0
    for group_id in Notification.objects.filter(
        status=Notification.Status.OPEN, send_at__lte=now
    ).values_list("pk", flat=True):
        if (
            flush_notification(group_id, now=now)
            or not Notification.objects.filter(
                pk=group_id, status=Notification.Status.OPEN
            ).exists()
        ):
            flushed += 1
    return flushed


def _requeue_lost_deliveries(now: datetime, batch: int) -> int:
    """A countdown message can be lost (broker restart); a late duplicate is harmless because
    an attempt starts with a conditional claim."""
    stale = now - timedelta(seconds=60)
    requeued = 0
    for delivery_id in Delivery.objects.filter(
        status__in=[Delivery.Status.PENDING, Delivery.Status.RETRYING], next_attempt_at__lte=stale
    ).values_list("pk", flat=True)[:batch]:
        publish(SEND_SYSTEM_ALERT, (delivery_id,))
        requeued += 1
    return requeued


# --- retention ---------------------------------------------------------------------------------
def cleanup(*, now: datetime | None = None) -> dict[str, int]:
    """Delete resolved alerts and delivery logs older than ALERTS_RETENTION_DAYS (batched)."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.ALERTS_RETENTION_DAYS)
    deliveries = delete_in_batches(Delivery.objects.filter(created_at__lt=cutoff))
    notifications = delete_in_batches(
        Notification.objects.filter(created_at__lt=cutoff)
        .exclude(status=Notification.Status.OPEN)
        .filter(deliveries__isnull=True)
    )
    alerts = delete_in_batches(
        Alert.objects.filter(state=Alert.State.RESOLVED, resolved_at__lt=cutoff)
    )
    return {"Alert": alerts, "Delivery": deliveries, "Notification": notifications}


# --- silences from the console --------------------------------------------------------------
# The durations the console offers when silencing from an alert.
SILENCE_HOURS = (1, 4, 24)


def exact_pattern(key: str) -> str:
    """A silence pattern matching `key` only: fnmatch's wildcards in it are escaped."""
    return "".join(f"[{c}]" if c in "*?[]" else c for c in key)


def silence_alert(alert: Alert, *, hours: int, actor: Any, now: datetime | None = None) -> Silence:
    """Silence `alert`'s key (exactly) from now for `hours`, one of SILENCE_HOURS."""
    if hours not in SILENCE_HOURS:
        raise ValueError(f"silence for {', '.join(map(str, SILENCE_HOURS))} hours, not {hours}")
    pattern = exact_pattern(alert.key)
    if len(pattern) > Silence._meta.get_field("pattern").max_length:  # type: ignore[operator]
        raise ValueError("this alert's key is too long to silence exactly: add a silence by hand")
    now = now or timezone.now()
    name = getattr(actor, "get_username", lambda: str(actor))()
    return Silence.objects.create(
        pattern=pattern,
        starts_at=now,
        ends_at=now + timedelta(hours=hours),
        reason=f"silenced from alert {alert.pk} by {name} for {hours} h"[:500],
        created_by=actor if getattr(actor, "pk", None) is not None else None,
    )
