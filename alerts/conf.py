"""Defaults of the alerts app's settings (applied by AlertsConfig; see opsconsole.conf)."""

from datetime import timedelta
from typing import Any

DEFAULTS: dict[str, Any] = {
    # Alertmanager's defaults: wait 30 s to group, repeat an unchanged firing alert every 4 h.
    "ALERTS_GROUP_WAIT": timedelta(seconds=30),
    "ALERTS_REPEAT_INTERVAL": timedelta(hours=4),
    "ALERTS_MAX_ATTEMPTS": 6,
    "ALERTS_RETRY_BACKOFF": timedelta(seconds=10),
    "ALERTS_RETRY_BACKOFF_MAX": timedelta(minutes=15),
    "ALERTS_HTTP_TIMEOUT": 5.0,
    "ALERTS_SMTP_TIMEOUT": 10.0,
    "ALERTS_RETENTION_DAYS": 30,
    "ALERTS_DISPATCH_INTERVAL": 10.0,
}
