"""Defaults of the metrics app's settings (applied by MetricsConfig; see opsconsole.conf)."""

from datetime import timedelta
from typing import Any

from opsconsole.conf import Derived

DEFAULTS: dict[str, Any] = {
    "OPS_METRICS_TOKEN": "",
    # Without a token, /metrics is open outside production; in production it must be opened.
    "OPS_METRICS_PUBLIC": Derived(lambda s: not s.PRODUCTION),
    "OPS_METRICS_KEY_PREFIX": "ops:metrics",
    "OPS_METRICS_FLUSH_INTERVAL": 5.0,
    "OPS_METRICS_SLOW_REQUEST_MS": 1000.0,
    "OPS_METRICS_SLOW_QUERY_MS": 100.0,
    "OPS_METRICS_DISK_PATHS": ["/"],
    # The queues whose depth is measured; empty: the Celery app's default queue and the error
    # digest's (metrics.collectors.measured_queues).
    "OPS_METRICS_QUEUES": [],
    "OPS_METRICS_RAW_DAYS": 7,
    "OPS_METRICS_HOURLY_DAYS": 90,
    "OPS_METRICS_DAILY_DAYS": 730,
    "OPS_METRICS_ACTIVE_USER_WINDOW": timedelta(minutes=5),
    "OPS_METRICS_COLLECT_INTERVAL": 60.0,
    "OPS_METRICS_ROLLUP_INTERVAL": 600.0,
    # One sampler per host, started by web, worker and beat processes (metrics.sampler).
    "OPS_HOST_SAMPLER": Derived(lambda s: s.OPS_ENVIRONMENT != "test"),
    "OPS_HOST_SAMPLE_INTERVAL": 60.0,
    # A host quiet this long (seconds) is missing: alerted once.
    "OPS_HOST_MISSING_AFTER": 180.0,
}
