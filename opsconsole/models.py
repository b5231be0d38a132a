from __future__ import annotations

from django.conf import settings
from django.db import models


class SystemLog(models.Model):
    """The audit trail: one row per operational action. Append-only."""

    class Result(models.TextChoices):
        SUCCESS = "success", "success"
        FAILURE = "failure", "failure"
        DENIED = "denied", "denied"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Kept as text too, so the record survives the user's deletion and names system actors.
    actor_name = models.CharField(max_length=150, default="system")
    action = models.CharField(max_length=100, db_index=True)
    target = models.CharField(max_length=255, blank=True, default="")
    result = models.CharField(max_length=10, choices=Result.choices, default=Result.SUCCESS)
    details = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["action", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {self.target}"


class ScheduleClaim(models.Model):
    """Which beat sends a schedule entry's current run: the first to claim it until `until`.

    With two or more beat processes (high availability) each one finds the same entries due;
    only the one whose claim succeeds sends the task (opsconsole.scheduler).
    """

    name = models.CharField(max_length=200, primary_key=True)
    until = models.DateTimeField()
    holder = models.CharField(max_length=255, default="")
    claimed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} (held by {self.holder} until {self.until:%H:%M:%S})"


class SchedulerHeartbeat(models.Model):
    """A running beat process, as it last reported; the `scheduler` health component reads it."""

    beat = models.CharField(max_length=255, primary_key=True)  # host:pid
    host = models.CharField(max_length=255)
    started_at = models.DateTimeField()
    last_tick = models.DateTimeField(db_index=True)
    # The shortest interval among the schedules this beat runs, in seconds: the scheduler
    # component fails when no beat ticked within twice that.
    shortest_interval = models.FloatField()

    def __str__(self) -> str:
        return self.beat
