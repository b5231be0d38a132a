"""The `backups` health component: is there a fresh, verified-or-unverified (not failed) backup?"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.conf import settings
from django.utils import timezone
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable

from backups.models import Backup


def _human(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:.1f} h" if hours >= 1 else f"{seconds / 60:.0f} min"


@dataclasses.dataclass
class BackupFreshness(HealthCheck):
    """Fails when the newest completed backup is older than OPS_BACKUP_MAX_AGE or its
    verification failed; reports its age and size."""

    observations: list[dict[str, Any]] = dataclasses.field(default_factory=list, repr=False)

    def run(self) -> None:
        self.observations = []
        newest = Backup.objects.latest_restorable()
        if newest is None:
            raise ServiceUnavailable("no completed backup yet: run `manage.py backup`")
        age = (timezone.now() - (newest.finished_at or newest.started_at)).total_seconds()
        self.observations += [
            {"measurement": "age", "observedValue": round(age, 1), "observedUnit": "s"},
            {"measurement": "size", "observedValue": newest.size, "observedUnit": "bytes"},
        ]
        self.observed_value = round(age, 1)
        self.observed_unit = "s"
        limit = float(settings.OPS_BACKUP_MAX_AGE)
        if age > limit:
            raise ServiceUnavailable(
                f"newest backup {newest.pk} is {_human(age)} old (limit {_human(limit)})"
            )
        if newest.verification_failed:
            raise ServiceUnavailable(
                f"verification of backup {newest.pk} failed: {newest.verify_error[:200]}"
            )


def checks() -> list[HealthCheck]:
    return [BackupFreshness()]
