"""Defaults of the queues app's settings (applied by QueuesConfig; see opsconsole.conf)."""

from typing import Any

DEFAULTS: dict[str, Any] = {
    # Days of failed tasks and per-task runtimes kept.
    "OPS_QUEUES_RETENTION_DAYS": 30,
}
