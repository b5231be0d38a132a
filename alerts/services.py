"""The alert verbs: fire, resolve, group and flush notifications, the periodic dispatcher, cleanup.

Every state change is a conditional UPDATE or happens under a row lock, so any number of
workers, beat and countdown tasks can run these at once: whoever claims a row does the work,
the others find nothing to do.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from opsconsole.retention import delete_in_batches

from .models import Alert, Channel, Delivery, Kind, Notification, Severity
from .notifications import notification_for
from .suppression import Suppressor, suppression_reason

logger = logging.getLogger(__name__)


def group_wait() -> timedelta:
    return settings.ALERTS_GROUP_WAIT


def repeat_interval() -> timedelta:
    return settings.ALERTS_REPEAT_INTERVAL


# --- publishing tasks (never raises: the periodic dispatcher catches up on lost messages) ----
def _publish(task_name: str, args: tuple[Any, ...], countdown: float = 0) -> None:
    from . import tasks

    task = getattr(tasks, task_name)
    try:
        task.apply_async(args, countdown=max(countdown, 0), retry=False)
    except Exception:
        logger.warning("could not queue %s%s; the dispatcher will pick it up", task_name, args)


def _publish_on_commit(task_name: str, args: tuple[Any, ...], countdown: float = 0) -> None:
    transaction.on_commit(lambda: _publish(task_name, args, countdown), robust=True)


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
        _publish_on_commit("flush_notification", (group.pk,), group_wait().total_seconds())
        alert.pending = group
        return group
    raise RuntimeError(f"could not find or open a notification group for {alert.kind}")


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
    payload = {"url": url, "details": details or {}}
    expires_at = now + expires_in if expires_in is not None else None
    # The storm path: a firing alert that is already queued, or was told recently at this
    # severity or higher, is only counted: one UPDATE, no lock held across statements.
    counted = (
        Alert.objects.filter(key=key, state=Alert.State.FIRING)
        .filter(
            Q(pending__isnull=False)
            | Q(last_notified_at__gt=now - repeat_interval(), notified_severity__gte=severity)
        )
        .update(
            occurrences=F("occurrences") + 1,
            last_fired_at=now,
            severity=severity,
            summary=summary[:1000],
            payload=payload,
            expires_at=expires_at,
        )
    )
    if counted:
        return None
    with transaction.atomic():
        alert = Alert.objects.select_for_update().filter(key=key, state=Alert.State.FIRING).first()
        if alert is None:
            alert = Alert(
                key=key,
                kind=kind,
                severity=severity,
                summary=summary[:1000],
                payload=payload,
                first_fired_at=now,
                last_fired_at=now,
                expires_at=expires_at,
            )
            # New: decide before the INSERT, so one statement writes it.
            alert.suppressed_by = suppression_reason(key, now)
            if not alert.suppressed_by:
                _join_group(alert, now)
            try:
                with transaction.atomic():
                    alert.save(force_insert=True)
                return alert
            except IntegrityError:
                # Another worker inserted it first (a group we opened is sent empty).
                alert = Alert.objects.select_for_update().get(key=key, state=Alert.State.FIRING)
                _refire(alert, severity, summary, payload, expires_at, now)
        else:
            _refire(alert, severity, summary, payload, expires_at, now)
        if _needs_telling(alert, now):
            alert.suppressed_by = suppression_reason(key, now)
            if not alert.suppressed_by:
                _join_group(alert, now)
        alert.save()
    return alert


def _refire(
    alert: Alert,
    severity: int,
    summary: str,
    payload: dict[str, Any],
    expires_at: datetime | None,
    now: datetime,
) -> None:
    alert.occurrences += 1
    alert.last_fired_at = now
    alert.severity = severity
    alert.summary = summary[:1000]
    alert.payload = payload
    alert.expires_at = expires_at


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


def absolute_url(path: str) -> str:
    """A link in a notification: console paths are made absolute on OPS_PUBLIC_URL."""
    if path.startswith(("http://", "https://")):
        return path
    return f"{settings.OPS_PUBLIC_URL}/{path.lstrip('/')}"


def wants(channel: Channel, item: dict[str, Any]) -> bool:
    """Routing: severity floor, key prefixes, and whether the channel takes resolved notices."""
    if item["state"] == Alert.State.RESOLVED and not channel.send_resolved:
        return False
    return channel.accepts(item["key"], int(item["severity"]))


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
        alerts = list(
            Alert.objects.select_for_update().filter(pending=group).order_by("-severity", "key")
        )
        suppressor = Suppressor(now)
        items: list[dict[str, Any]] = []
        for alert in alerts:
            alert.pending = None
            reason = suppressor.reason(alert.key)
            alert.suppressed_by = reason
            if reason:
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


def _create_deliveries(group: Notification, channels: Any, now: datetime) -> list[int]:
    ids = []
    for channel in channels:
        if any(wants(channel, item) for item in group.items):
            delivery = Delivery.objects.create(
                notification=group, channel=channel, created_at=now, next_attempt_at=now
            )
            ids.append(delivery.pk)
            _publish_on_commit("send_system_alert", (delivery.pk,))
    return ids


def send_test_notification(channel: Channel, *, now: datetime | None = None) -> Delivery:
    """A one-item notification to one channel, attempted right away (admin action)."""
    from .delivery import attempt_delivery

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
    counts = {"expired": 0, "queued": 0, "flushed": 0, "requeued": 0}
    counts["expired"] = Alert.objects.filter(
        state=Alert.State.FIRING, expires_at__lte=now, pending__isnull=True
    ).update(state=Alert.State.RESOLVED, resolved_at=now)

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
            counts["queued"] += 1

    for group_id in Notification.objects.filter(
        status=Notification.Status.OPEN, send_at__lte=now
    ).values_list("pk", flat=True):
        if (
            flush_notification(group_id, now=now)
            or not Notification.objects.filter(
                pk=group_id, status=Notification.Status.OPEN
            ).exists()
        ):
            counts["flushed"] += 1

    # A countdown message can be lost (broker restart); a late duplicate is harmless because
    # an attempt starts with a conditional claim.
    stale = now - timedelta(seconds=60)
    for delivery_id in Delivery.objects.filter(
        status__in=[Delivery.Status.PENDING, Delivery.Status.RETRYING], next_attempt_at__lte=stale
    ).values_list("pk", flat=True)[:batch]:
        _publish("send_system_alert", (delivery_id,))
        counts["requeued"] += 1
    return counts


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
