"""Error tracking: projects with DSN keys, issues (groups), error reports (events), the inbox.

Ingest writes one `InboxEvent` row per accepted event and nothing else; the worker drains the
inbox in batches into `ErrorReport` + `Issue` rows (see errors/digest.py).
"""

from __future__ import annotations

import uuid
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


def _new_key() -> str:
    return uuid.uuid4().hex


class Severity(models.TextChoices):
    INFO = "info", "info"
    WARNING = "warning", "warning"
    ERROR = "error", "error"
    CRITICAL = "critical", "critical"


SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2, "critical": 3}


class ErrorProject(models.Model):
    """An application that reports errors; its alert thresholds are edited in the admin."""

    name = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    rate_limit_per_minute = models.PositiveIntegerField(
        default=600, help_text="Events accepted per minute; 0 means no limit."
    )
    bytes_per_minute = models.PositiveBigIntegerField(
        default=50 * 2**20, help_text="Event bytes accepted per minute; 0 means no limit."
    )
    bytes_per_day = models.PositiveBigIntegerField(
        default=2 * 2**30, help_text="Event bytes accepted per UTC day; 0 means no limit."
    )
    new_issues_per_hour = models.PositiveIntegerField(
        default=100,
        help_text="New issues created per hour; events that would create more are grouped "
        "into one overflow issue. 0 means no limit.",
    )
    retention_days = models.PositiveIntegerField(default=90)
    max_events_per_issue = models.PositiveIntegerField(
        default=1000, help_text="Older events of an issue beyond this many are removed."
    )
    # Alert rules (the seed's, with thresholds editable here).
    alert_on_critical = models.BooleanField(default=True)
    alert_on_new_issue = models.BooleanField(default=True)
    alert_on_regression = models.BooleanField(default=True)
    frequency_threshold = models.PositiveIntegerField(
        default=10, help_text="Alert when an issue has more than this many events in the window."
    )
    frequency_window_minutes = models.PositiveIntegerField(default=60)
    business_hours_alerts = models.BooleanField(default=True)
    business_hours_start = models.PositiveSmallIntegerField(default=9, help_text="Hour, 0-23.")
    business_hours_end = models.PositiveSmallIntegerField(default=17, help_text="Hour, 1-24.")
    business_days = models.CharField(
        max_length=20, default="0,1,2,3,4", help_text="Weekdays, 0=Monday ... 6=Sunday."
    )
    business_timezone = models.CharField(max_length=64, default="UTC")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if not 0 <= self.business_hours_start < self.business_hours_end <= 24:
            errors["business_hours_end"] = "Use 0 <= start < end <= 24."
        days = [d.strip() for d in self.business_days.split(",") if d.strip()]
        if not days or any(d not in "0123456" or len(d) != 1 for d in days):
            errors["business_days"] = "Comma-separated weekdays, 0=Monday ... 6=Sunday."
        try:
            ZoneInfo(self.business_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            errors["business_timezone"] = "Unknown time zone; use a name like Europe/Paris."
        if errors:
            raise ValidationError(errors)


class ProjectKey(models.Model):
    """A DSN public key. Revoking it makes the DSN answer 403."""

    project = models.ForeignKey(ErrorProject, on_delete=models.CASCADE, related_name="keys")
    public_key = models.CharField(max_length=32, unique=True, default=_new_key)
    label = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.project.name}: {self.public_key[:8]}…"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def dsn(self, public_url: str) -> str:
        scheme, _, rest = public_url.rstrip("/").partition("://")
        return f"{scheme}://{self.public_key}@{rest}/{self.project_id}"


class SeverityRule(models.Model):
    """Maps exception types (fnmatch on "module.Type" and "Type") to a severity."""

    pattern = models.CharField(max_length=200, help_text="e.g. *DatabaseError or Http404")
    severity = models.CharField(max_length=10, choices=Severity.choices)
    position = models.PositiveIntegerField(default=100, help_text="Lower runs first.")

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return f"{self.pattern} → {self.severity}"


class Issue(models.Model):
    class Status(models.TextChoices):
        UNRESOLVED = "unresolved", "unresolved"
        RESOLVED = "resolved", "resolved"
        IGNORED = "ignored", "ignored"

    project = models.ForeignKey(ErrorProject, on_delete=models.CASCADE, related_name="issues")
    grouping_version = models.PositiveSmallIntegerField(default=1)
    fingerprint = models.CharField(max_length=64)
    title = models.CharField(max_length=255)
    culprit = models.CharField(max_length=255, blank=True)
    exception_type = models.CharField(max_length=255, blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.ERROR)
    level = models.CharField(max_length=10, default="error")
    first_seen = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now, help_text="When the digest made it.")
    last_seen = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)
    last_message = models.TextField(blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.UNRESOLVED)
    resolved_at = models.DateTimeField(null=True, blank=True)
    ignored_until = models.DateTimeField(null=True, blank=True)
    ignored_until_count = models.PositiveIntegerField(
        null=True, blank=True, help_text="Reopen once the issue's count reaches this."
    )
    regressed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "grouping_version", "fingerprint"], name="errors_issue_group"
            )
        ]
        indexes = [
            models.Index(fields=["project", "status", "-last_seen"]),
            # The new-issue budget counts the issues a project started in the last hour.
            models.Index(fields=["project", "created_at"]),
        ]
        permissions = [("resolve_issue", "Can resolve, ignore and reopen issues")]

    def __str__(self) -> str:
        return self.title


class ErrorReport(models.Model):
    """One event as received (after scrubbing)."""

    project = models.ForeignKey(ErrorProject, on_delete=models.CASCADE, related_name="reports")
    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="reports")
    event_id = models.CharField(max_length=32)
    exception_type = models.CharField(max_length=255, blank=True)
    message = models.TextField(blank=True)
    filename = models.CharField(max_length=500, blank=True)
    lineno = models.PositiveIntegerField(null=True, blank=True)
    frames = models.JSONField(default=list, blank=True)
    request = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    breadcrumbs = models.JSONField(default=list, blank=True)
    contexts = models.JSONField(default=dict, blank=True)
    user = models.JSONField(default=dict, blank=True)
    release = models.CharField(max_length=200, blank=True)
    environment = models.CharField(max_length=100, blank=True)
    platform = models.CharField(max_length=50, blank=True)
    level = models.CharField(max_length=10, default="error")
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.ERROR)
    reported_at = models.DateTimeField(help_text="When the client says the event happened.")
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "event_id"], name="errors_report_event")
        ]
        indexes = [
            models.Index(fields=["issue", "-received_at"]),
            models.Index(fields=["project", "received_at"]),
            # The issue list's filters: issues with an event of this release / environment.
            models.Index(fields=["release", "issue"], name="errors_report_release"),
            models.Index(fields=["environment", "issue"], name="errors_report_environment"),
        ]

    def __str__(self) -> str:
        return f"{self.exception_type or self.level}: {self.message[:80]}"


class InboxEvent(models.Model):
    """An accepted, not yet digested event: the durable queue between ingest and the worker."""

    project = models.ForeignKey(ErrorProject, on_delete=models.CASCADE, related_name="+")
    event_id = models.CharField(max_length=32)
    payload = models.BinaryField()
    received_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="How many times a digest has taken this event."
    )
    available_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Not taken again before this time: a worker holds it, or it waits to be retried.",
    )
    # A database default too: ingest inserts rows with its own one-statement INSERT.
    last_error = models.TextField(
        blank=True, db_default="", help_text="Why the last attempt failed."
    )
    quarantined_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set when the event failed too often: it is kept for inspection, never retried.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "event_id"], name="errors_inbox_event")
        ]

    def __str__(self) -> str:
        return f"inbox {self.event_id}"


class QuotaCounter(models.Model):
    """One fixed-window usage counter (ingest quotas when there is no Redis), updated only by
    single atomic statements (errors/ratelimit.py)."""

    key = models.CharField(max_length=200, unique=True)
    value = models.BigIntegerField(default=0)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key} = {self.value}"
