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
