"""Defaults of the console app's settings (applied by ConsoleConfig; see opsconsole.conf)."""

from typing import Any

DEFAULTS: dict[str, Any] = {
    # The availability objective the dashboard's uptime and error budget are judged against (%).
    "OPS_SLO_TARGET": 99.9,
    # The p95 latency target when no p95 threshold is configured (ms).
    "OPS_LATENCY_TARGET_MS": 200.0,
}
