"""One row per backup run: what was written where, with sizes, checksums and timings."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q


class BackupQuerySet(models.QuerySet["Backup"]):
    def restorable(self) -> BackupQuerySet:
        """Fully uploaded and checksummed backups: the only ones a restore may use."""
        return self.filter(status__in=Backup.RESTORABLE)

    def latest_restorable(self, kind: str | None = None) -> Backup | None:
        qs = self.restorable()
        if kind == "db":
            qs = qs.filter(kind__in=["db", "full"])
        elif kind == "files":
            qs = qs.filter(kind__in=["files", "full"])
        return qs.order_by("-started_at", "-pk").first()


class Backup(models.Model):
    class Kind(models.TextChoices):
        FULL = "full", "database and files"
        DB = "db", "database only"
        FILES = "files", "files only"

    class Status(models.TextChoices):
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"
        VERIFIED = "verified"

    RESTORABLE = (Status.COMPLETED, Status.VERIFIED)

    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    # Folder (relative to the storage root) holding this backup's artifacts and manifest.
    name = models.CharField(max_length=200, blank=True, default="")
    storage = models.CharField(max_length=300, blank=True, default="")
    engine = models.CharField(max_length=20, blank=True, default="")
    server_version = models.CharField(max_length=200, blank=True, default="")
    app_version = models.CharField(max_length=40, blank=True, default="")
    encrypted = models.BooleanField(default=False)
    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True, help_text="seconds")
    size = models.BigIntegerField(default=0, help_text="bytes stored, all artifacts")
    # [{"name", "role": "db"|"files", "size", "sha256", "format", "encrypted"}]
    artifacts = models.JSONField(default=list, blank=True)
    row_counts = models.JSONField(default=dict, blank=True)
    manifest_sha256 = models.CharField(max_length=64, blank=True, default="")
    error = models.TextField(blank=True, default="")
    actor = models.CharField(max_length=150, blank=True, default="")
    hostname = models.CharField(max_length=255, blank=True, default="")
    pid = models.PositiveIntegerField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    verify_failed_at = models.DateTimeField(null=True, blank=True)
    verify_error = models.TextField(blank=True, default="")
    restore_seconds = models.FloatField(
        null=True, blank=True, help_text="measured restore time of the last verification (RTO)"
    )

    objects = BackupQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-pk"]
        permissions = [
            ("operate_backup", "Can start backups and verifications"),
            # Replaces the live database and files: the administrator role only.
            ("restore_backup", "Can restore a backup over the live database and files"),
        ]
        constraints = [
            # One backup at a time: a second worker running the same schedule gets an error.
            models.UniqueConstraint(
                fields=["status"], condition=Q(status="running"), name="backups_one_running"
            )
        ]

    def __str__(self) -> str:
        return f"backup {self.pk} ({self.kind}, {self.status})"

    @property
    def is_restorable(self) -> bool:
        return self.status in self.RESTORABLE

    def artifact(self, role: str) -> dict[str, Any] | None:
        return next((a for a in self.artifacts if a.get("role") == role), None)

    @property
    def verification_failed(self) -> bool:
        """The latest verification failed (a later success clears it)."""
        if self.verify_failed_at is None:
            return False
        return self.verified_at is None or self.verify_failed_at > self.verified_at
