"""Defaults of the health app's settings (applied by HealthConfig; see opsconsole.conf)."""

from typing import Any

from opsconsole.conf import Derived

DEFAULTS: dict[str, Any] = {
    # Probe details (/health/?format=json) need this bearer token; empty: staff sessions only.
    "OPS_HEALTH_TOKEN": "",
    "OPS_HEALTH_CHECK_TIMEOUT": 2.0,
    "OPS_HEALTH_EXTERNAL_TIMEOUT": 5.0,
    "OPS_HEALTH_CACHE_TTL": 2.0,
    "OPS_HEALTH_FAILED_TASKS_THRESHOLD": 10,
    "OPS_HEALTH_WORKER_MAX_AGE": 60.0,
    "OPS_HEALTH_QUEUE_MAX_WAIT": 300.0,
    # Per queue: warn at this oldest wait (fail: OPS_HEALTH_QUEUE_MAX_WAIT) and these depths.
    "OPS_HEALTH_QUEUE_WAIT_WARN": 60.0,
    "OPS_HEALTH_QUEUE_DEPTH_WARN": 1000,
    "OPS_HEALTH_QUEUE_DEPTH_FAIL": 10000,
    # Workers that should be alive (0: not checked).
    "OPS_HEALTH_EXPECTED_WORKERS": 0,
    "OPS_HEALTH_DISK_PATHS": Derived(lambda s: [str(s.OPS_VAR_DIR)]),
    "OPS_HEALTH_DISK_WARN": 80.0,
    "OPS_HEALTH_DISK_FAIL": 95.0,
    "OPS_HEALTH_MEMORY_WARN": 90.0,
    "OPS_HEALTH_MEMORY_FAIL": 98.0,
    "OPS_HEALTH_RETENTION_DAYS": 30,
    # Seconds between two scheduled runs of every check (opsconsole.host.beat_schedule).
    "OPS_HEALTH_CHECK_INTERVAL": 60.0,
}
