from __future__ import annotations

from django.db import models


class MaintenanceState(models.Model):
    """The single row that says whether the site is down; every web process reads it."""

    singleton = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    is_down = models.BooleanField(default=False)
    message = models.TextField(blank=True, default="")
    retry_after = models.PositiveIntegerField(default=60)
    # Only a hash of the bypass secret is kept.
    secret_hash = models.CharField(max_length=128, blank=True, default="")
    allowed_ips = models.JSONField(default=list, blank=True)
    since = models.DateTimeField(null=True, blank=True)
    changed_by = models.CharField(max_length=150, blank=True, default="")
    window = models.ForeignKey(
        "MaintenanceWindow", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "maintenance mode"
        verbose_name_plural = "maintenance mode"

    def __str__(self) -> str:
        return "down" if self.is_down else "up"


class MaintenanceWindow(models.Model):
    """A planned window: optionally turns maintenance mode on and silences matching alerts."""

    starts_at = models.DateTimeField(db_index=True)
    ends_at = models.DateTimeField(db_index=True)
    message = models.CharField(max_length=500, blank=True, default="")
    enable_maintenance_mode = models.BooleanField(default=False)
    # Alert key patterns (fnmatch style, e.g. "health:*", "threshold:cpu:*") silenced while active.
    silence_keys = models.JSONField(default=list, blank=True)
    started_notified_at = models.DateTimeField(null=True, blank=True, editable=False)
    ended_notified_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at"]

    def __str__(self) -> str:
        return f"{self.starts_at:%Y-%m-%d %H:%M} – {self.ends_at:%Y-%m-%d %H:%M} {self.message}"


class MaintenanceRun(models.Model):
    """One step of one daily or weekly upkeep run: what it did, how long it took, and whether
    it worked. Steps of the same run share `run_id`."""

    class Kind(models.TextChoices):
        DAILY = "daily", "daily"
        WEEKLY = "weekly", "weekly"

    class Status(models.TextChoices):
        RUNNING = "running", "running"
        SUCCESS = "success", "success"
        FAILED = "failed", "failed"
        SKIPPED = "skipped", "skipped"

    run_id = models.UUIDField(db_index=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    step = models.CharField(max_length=50)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    triggered_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["-started_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.step} {self.status}"


class MaintenanceLock(models.Model):
    """A named lease, claimed with a conditional UPDATE, so that two workers running the same
    upkeep job at once do the work once. A lease expires so a crashed holder does not block
    the next run forever."""

    name = models.CharField(max_length=50, primary_key=True)
    holder = models.CharField(max_length=64, blank=True, default="")
    acquired_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder or 'nobody'}"
