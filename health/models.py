from __future__ import annotations

from django.db import models
from django.utils import timezone


class Status(models.TextChoices):
    PASS = "pass", "pass"
    WARN = "warn", "warn"
    FAIL = "fail", "fail"


class HealthCheck(models.Model):
    """One scheduled (or manual) run of every health check."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    status = models.CharField(max_length=4, choices=Status.choices)
    duration_ms = models.FloatField()
    trigger = models.CharField(max_length=20, default="schedule")
    hostname = models.CharField(max_length=255, blank=True, default="")
    # The full health+json "checks" object, details included (staff-only in the console).
    details = models.JSONField(default=dict)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "health check run"
        permissions = [("run_check", "Can run the health checks now from the console")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.status}"


class ComponentResult(models.Model):
    """One component's outcome within a run, kept apart for fast uptime queries."""

    run = models.ForeignKey(HealthCheck, on_delete=models.CASCADE, related_name="results")
    created_at = models.DateTimeField(default=timezone.now)
    component = models.CharField(max_length=100)
    status = models.CharField(max_length=4, choices=Status.choices)
    duration_ms = models.FloatField()
    output = models.TextField(blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["component", "created_at"])]

    def __str__(self) -> str:
        return f"{self.component} {self.status}"


class ComponentState(models.Model):
    """The last known status of each component: transitions are detected by a conditional
    UPDATE on this row, so two workers running checks at once send each signal once."""

    component = models.CharField(max_length=100, primary_key=True)
    status = models.CharField(max_length=4, choices=Status.choices)
    since = models.DateTimeField(default=timezone.now)
    output = models.TextField(blank=True, default="")

    def __str__(self) -> str:
        return f"{self.component}: {self.status}"


class WorkerHeartbeat(models.Model):
    """Written by each Celery worker every few seconds; the queue check reads its age."""

    hostname = models.CharField(max_length=255, primary_key=True)
    last_seen = models.DateTimeField(db_index=True)
    started_at = models.DateTimeField(default=timezone.now)
    pid = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return self.hostname


class ExternalService(models.Model):
    """An HTTP(S) dependency checked by the `external` health component."""

    name = models.CharField(max_length=100, unique=True)
    url = models.URLField(max_length=500)
    method = models.CharField(
        max_length=4, choices=[("GET", "GET"), ("HEAD", "HEAD")], default="GET"
    )
    expected_status = models.PositiveSmallIntegerField(default=200)
    timeout_seconds = models.FloatField(default=2.0)
    tls_warn_days = models.PositiveSmallIntegerField(
        default=14, help_text="Warn when the TLS certificate expires within this many days."
    )
    critical = models.BooleanField(
        default=True, help_text="A failure fails the whole health status (else it only warns)."
    )
    verify_tls = models.BooleanField(
        default=True,
        help_text="Verify the certificate chain (turn off only for private CAs; expiry is "
        "still checked).",
    )
    allow_private_network = models.BooleanField(
        default=False,
        help_text="Allow private, loopback and link-local addresses (refused by default).",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from django.conf import settings
        from django.core.exceptions import ValidationError

        from opsconsole.http import InvalidURL, parse_url

        errors: dict[str, str] = {}
        limit = settings.OPS_HEALTH_EXTERNAL_TIMEOUT
        if not 0.1 <= self.timeout_seconds <= limit:
            errors["timeout_seconds"] = (
                f"Use 0.1 to {limit:g} seconds (OPS_HEALTH_EXTERNAL_TIMEOUT): probes must answer "
                "before the load balancer gives up."
            )
        if self.url:
            try:
                parse_url(self.url)
            except InvalidURL as exc:
                errors["url"] = f"Enter a valid URL: {exc}."
        if not 100 <= self.expected_status <= 599:
            errors["expected_status"] = "An HTTP status is between 100 and 599."
        if errors:
            raise ValidationError(errors)
