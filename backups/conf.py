"""Defaults of the backups app's settings (applied by BackupsConfig; see opsconsole.conf)."""

from typing import Any

from opsconsole.conf import Derived

DEFAULTS: dict[str, Any] = {
    "BACKUP_STORAGE_URL": Derived(lambda s: f"file://{s.OPS_VAR_DIR / 'backups'}"),
    "AWS_ACCESS_KEY_ID": "",
    "AWS_SECRET_ACCESS_KEY": "",
    "AWS_ENDPOINT_URL_S3": "",
    "AWS_DEFAULT_REGION": "us-east-1",
    "OPS_BACKUP_MAX_AGE": 26 * 3600.0,
    "OPS_BACKUP_PATHS": [],
    "OPS_BACKUP_ENCRYPTION_KEY": "",
    "OPS_BACKUP_KEEP_ALL_DAYS": 7,
    "OPS_BACKUP_KEEP_DAILY_DAYS": 16,
    "OPS_BACKUP_KEEP_WEEKLY_WEEKS": 8,
    "OPS_BACKUP_KEEP_MONTHLY_MONTHS": 4,
    "OPS_BACKUP_KEEP_YEARLY_YEARS": 2,
    "OPS_BACKUP_MAX_STORAGE_MB": 5000,
    "OPS_BACKUP_FAILED_KEEP_DAYS": 30,
    "OPS_BACKUP_STALE_AFTER": 3600.0,
    "OPS_BACKUP_S3_PART_SIZE": 16 * 1024 * 1024,
    "OPS_BACKUP_PG_BIN_DIR": "",
    "OPS_BACKUP_PG_COMPRESS": "",
    "OPS_BACKUP_RESTORE_JOBS": 2,
    "OPS_BACKUP_TMP_DIR": "",
    "OPS_BACKUP_TASK_TIME_LIMIT": 6 * 3600,
    "OPS_BACKUP_HOUR": 2,
}
