"""Alerts, the notifications that group them, the channels they go to, silences and deliveries.

Lifecycle (Alertmanager semantics, see docs in README "Alerts"):
an `Alert` is one firing episode of a key. While it needs telling (new, escalated, resolved after
being told, or due for a repeat) it sits in an open `Notification` of its kind; the group is sent
`group_wait` after it opened, as one `Delivery` per matching `Channel`.
"""

from __future__ import annotations

import fnmatch
import secrets
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Severity(models.IntegerChoices):
    INFO = 10, "info"
    WARNING = 20, "warning"
    CRITICAL = 30, "critical"

    @classmethod
    def parse(cls, name: str) -> Severity:
        """'warning' -> Severity.WARNING; ValueError naming the choices otherwise."""
        for member in cls:
            if member.label == name.strip().lower():
                return member
        names = ", ".join(str(m.label) for m in cls)
        raise ValueError(f"unknown severity {name!r}: use one of {names}")


class Kind(models.TextChoices):
    """Which notification an alert is told with; groups are formed per kind."""

    SYSTEM = "system", "system alert"
    PERFORMANCE = "performance", "performance degradation"
    HEALTH = "health", "health check"
    BACKUP_FAILED = "backup_failed", "backup failure"
    BACKUP_COMPLETED = "backup_completed", "backup completed"


class AlertQuerySet(models.QuerySet["Alert"]):
    def firing(self) -> AlertQuerySet:
        return self.filter(state=Alert.State.FIRING)

    def resolved(self) -> AlertQuerySet:
        return self.filter(state=Alert.State.RESOLVED)


class Alert(models.Model):
    class State(models.TextChoices):
        FIRING = "firing", "firing"
        RESOLVED = "resolved", "resolved"

    key = models.CharField(max_length=255, db_index=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.SYSTEM)
    severity = models.PositiveSmallIntegerField(choices=Severity.choices, default=Severity.WARNING)
    state = models.CharField(max_length=10, choices=State.choices, default=State.FIRING)
    summary = models.CharField(max_length=1000)
    # {"url": link into the console, "details": {...}} from the signal that fired it.
    payload = models.JSONField(default=dict, blank=True)
    first_fired_at = models.DateTimeField()
    last_fired_at = models.DateTimeField()
    occurrences = models.PositiveIntegerField(default=1)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # When a notification carrying this alert (firing) went out; None = never told.
    last_notified_at = models.DateTimeField(null=True, blank=True)
    notified_severity = models.PositiveSmallIntegerField(null=True, blank=True)
    resolved_notified_at = models.DateTimeField(null=True, blank=True)
    # Events (an error issue, a finished backup) have no clearing signal: they resolve silently
    # at this time unless fired again, like Alertmanager's resolve_timeout.
    expires_at = models.DateTimeField(null=True, blank=True)
    suppressed_by = models.CharField(max_length=255, blank=True, default="")
    pending = models.ForeignKey(
        "Notification",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="pending_alerts",
        help_text="the open notification this alert waits in",
    )

    objects = AlertQuerySet.as_manager()

    class Meta:
        ordering = ["-last_fired_at", "-id"]
        constraints = [
            # One firing episode per key; resolved episodes are history.
            models.UniqueConstraint(
                fields=["key"], condition=Q(state="firing"), name="alerts_one_firing_per_key"
            ),
        ]
        indexes = [
            models.Index(fields=["state", "last_notified_at"]),
            models.Index(fields=["state", "resolved_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.get_state_display()})"

    @property
    def url(self) -> str:
        return str(self.payload.get("url") or "")

    @property
    def severity_name(self) -> str:
        return str(Severity(self.severity).label)


class Silence(models.Model):
    """Suppresses notifications for keys matching `pattern` (fnmatch) between two times."""

    pattern = models.CharField(
        max_length=255, help_text='fnmatch pattern, e.g. "health:*" or "threshold:cpu:web-1"'
    )
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=500)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-ends_at"]

    def __str__(self) -> str:
        return f"{self.pattern} until {self.ends_at:%Y-%m-%d %H:%M}"

    def clean(self) -> None:
        if not self.pattern.strip():
            raise ValidationError({"pattern": "Give a key or a pattern such as health:*"})
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": "The silence must end after it starts."})

    def matches(self, key: str) -> bool:
        return fnmatch.fnmatchcase(key, self.pattern)

    def is_active(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.starts_at <= now < self.ends_at


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


class Channel(models.Model):
    class Type(models.TextChoices):
        EMAIL = "email", "email"
        SLACK = "slack", "Slack incoming webhook"
        WEBHOOK = "webhook", "generic webhook"

    name = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=10, choices=Type.choices)
    enabled = models.BooleanField(default=True)
    min_severity = models.PositiveSmallIntegerField(
        choices=Severity.choices, default=Severity.WARNING
    )
    key_prefixes = models.CharField(
        max_length=500,
        blank=True,
        default="",
        help_text="comma-separated key prefixes this channel receives (e.g. health:, backup:); "
        "empty = all",
    )
    recipients = models.TextField(
        blank=True, default="", help_text="email: addresses, comma or newline separated"
    )
    url = models.URLField(
        max_length=1000, blank=True, default="", help_text="Slack or webhook: target URL"
    )
    secret = models.CharField(
        max_length=200,
        blank=True,
        default=_new_secret,
        help_text="webhook: HMAC-SHA256 signing secret (the receiver verifies with it)",
    )
    allow_private = models.BooleanField(
        default=False,
        help_text="let this channel reach private/loopback addresses (refused by default)",
    )
    send_resolved = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.type})"

    def recipient_list(self) -> list[str]:
        raw = self.recipients.replace("\n", ",").replace(";", ",")
        return [item.strip() for item in raw.split(",") if item.strip()]

    def prefix_list(self) -> list[str]:
        return [item.strip() for item in self.key_prefixes.split(",") if item.strip()]

    def accepts(self, key: str, severity: int) -> bool:
        if severity < self.min_severity:
            return False
        prefixes = self.prefix_list()
        return not prefixes or any(key.startswith(prefix) for prefix in prefixes)

    def clean(self) -> None:
        from opsconsole.http import BlockedDestination, InvalidURL, check_destination

        errors: dict[str, Any] = {}
        if self.type == self.Type.EMAIL:
            addresses = self.recipient_list()
            if not addresses:
                errors["recipients"] = "An email channel needs at least one recipient."
            for address in addresses:
                try:
                    validate_email(address)
                except ValidationError:
                    errors["recipients"] = f"{address!r} is not an email address."
                    break
        elif self.type in (self.Type.SLACK, self.Type.WEBHOOK):
            if not self.url:
                errors["url"] = "Slack and webhook channels need a URL."
            else:
                try:
                    check_destination(self.url, allow_private=self.allow_private)
                except InvalidURL as exc:
                    errors["url"] = f"Enter a valid URL: {exc}."
                except BlockedDestination as exc:
                    errors["url"] = f"Refused: {exc}."
            if self.type == self.Type.WEBHOOK and len(self.secret) < 16:
                errors["secret"] = "Use a signing secret of at least 16 characters."  # noqa: S105
        if errors:
            raise ValidationError(errors)


class Notification(models.Model):
    """One grouped message: opened by the first alert that needs telling, sent group_wait later."""

    class Status(models.TextChoices):
        OPEN = "open", "open (waiting for the group wait)"
        SENDING = "sending", "sending"
        SENT = "sent", "sent"
        EMPTY = "empty", "nothing to send"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    send_at = models.DateTimeField(db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    title = models.CharField(max_length=300, blank=True, default="")
    # Snapshot of the alerts as told, so retries send exactly the same content.
    items = models.JSONField(default=list, blank=True)
    is_test = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind"],
                condition=Q(status="open", is_test=False),
                name="alerts_one_open_notification_per_kind",
            ),
        ]

    def __str__(self) -> str:
        return self.title or f"{self.get_kind_display()} #{self.pk}"


class Delivery(models.Model):
    """One notification to one channel: the delivery log."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        SENDING = "sending", "sending"
        RETRYING = "retrying", "waiting to retry"
        DELIVERED = "delivered", "delivered"
        FAILED = "failed", "failed"

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="deliveries"
    )
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.notification} -> {self.channel.name}: {self.status}"
