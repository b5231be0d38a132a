"""Grandfather-father-son retention, laravel-backup's default strategy.

Keep every backup for OPS_BACKUP_KEEP_ALL_DAYS, then the newest one per day, per ISO week,
per month and per year for the following periods, drop anything older, then delete the oldest
until the total is under OPS_BACKUP_MAX_STORAGE_MB. The newest completed backup and the newest
verified one are never deleted, and a bad or missing setting stops the run instead of being
read as zero.
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from backups import storage
from backups.errors import BackupError
from backups.models import Backup
from backups.signals import backup_failed, notify
from opsconsole import audit
from opsconsole.models import SystemLog

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Policy:
    keep_all_days: int = 7
    daily_days: int = 16
    weekly_weeks: int = 8
    monthly_months: int = 4
    yearly_years: int = 2
    max_storage_mb: int = 5000  # 0: no size cap

    @classmethod
    def from_settings(cls) -> Policy:
        values: dict[str, int] = {}
        for field, name in [
            ("keep_all_days", "OPS_BACKUP_KEEP_ALL_DAYS"),
            ("daily_days", "OPS_BACKUP_KEEP_DAILY_DAYS"),
            ("weekly_weeks", "OPS_BACKUP_KEEP_WEEKLY_WEEKS"),
            ("monthly_months", "OPS_BACKUP_KEEP_MONTHLY_MONTHS"),
            ("yearly_years", "OPS_BACKUP_KEEP_YEARLY_YEARS"),
            ("max_storage_mb", "OPS_BACKUP_MAX_STORAGE_MB"),
        ]:
            value = getattr(settings, name, None)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise BackupError(f"{name} is missing or invalid ({value!r}): retention not run")
            values[field] = value
        if values["keep_all_days"] < 1:
            raise BackupError("OPS_BACKUP_KEEP_ALL_DAYS must be at least 1: retention did not run")
        return cls(**values)


def _sub_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def plan(backups: Sequence[Any], now: datetime, policy: Policy) -> list[Any]:
    """Which of `backups` (objects with pk, started_at, size, verified_at) should go."""
    ordered = sorted(backups, key=lambda b: (b.started_at, b.pk), reverse=True)
    if not ordered:
        return []
    protected = {ordered[0].pk}
    verified = [b for b in ordered if b.verified_at is not None]
    if verified:
        protected.add(verified[0].pk)
    all_until = now - timedelta(days=policy.keep_all_days)
    daily_until = all_until - timedelta(days=policy.daily_days)
    weekly_until = daily_until - timedelta(weeks=policy.weekly_weeks)
    monthly_until = _sub_months(weekly_until, policy.monthly_months)
    yearly_until = _sub_months(monthly_until, 12 * policy.yearly_years)
    seen: set[tuple[Any, ...]] = set()
    kept: list[Any] = []
    doomed: list[Any] = []
    for backup in ordered:
        moment = backup.started_at.astimezone(UTC)
        key: tuple[Any, ...] | None
        if moment >= all_until:
            key = None
        elif moment >= daily_until:
            key = ("day", moment.date())
        elif moment >= weekly_until:
            key = ("week", *moment.isocalendar()[:2])
        elif moment >= monthly_until:
            key = ("month", moment.year, moment.month)
        elif moment >= yearly_until:
            key = ("year", moment.year)
        else:
            key = ("expired", backup.pk)
            seen.add(key)  # expired: never the first of its group
        if backup.pk in protected or key is None or key not in seen:
            if key is not None:
                seen.add(key)
            kept.append(backup)
        else:
            doomed.append(backup)
    if policy.max_storage_mb:
        cap = policy.max_storage_mb * 1024 * 1024
        total = sum(b.size for b in kept)
        for backup in reversed(kept):  # oldest first
            if total <= cap:
                break
            if backup.pk in protected:
                continue
            doomed.append(backup)
            total -= backup.size
    return sorted(doomed, key=lambda b: (b.started_at, b.pk))


def apply_retention(*, dry_run: bool = False, now: datetime | None = None) -> list[Backup]:
    """Delete (or with dry_run, list) the backups the policy no longer keeps, per kind."""
    policy = Policy.from_settings()
    now = now or timezone.now()
    doomed: list[Backup] = []
    for kind in Backup.Kind.values:
        doomed += plan(list(Backup.objects.restorable().filter(kind=kind)), now, policy)
    if dry_run:
        return doomed
    deleted = []
    for backup in doomed:
        try:
            storage.delete_folder(backup.name)
        except Exception as exc:
            reason = f"could not delete backup {backup.pk} from storage: {exc}"
            logger.error("backups: %s", reason)
            notify(
                backup_failed,
                backup_id=backup.pk,
                kind=backup.kind,
                reason=reason,
                phase="retention",
            )
            continue
        Backup.objects.filter(pk=backup.pk).delete()
        deleted.append(backup)
    if deleted:
        audit.record(
            "backup.retention",
            target=f"{len(deleted)} backups",
            result=SystemLog.Result.SUCCESS,
            details={"deleted": [b.pk for b in deleted]},
        )
    return deleted
