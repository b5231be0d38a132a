"""Defaults of the maintenance app's settings (applied by MaintenanceConfig; see
opsconsole.conf)."""

from datetime import timedelta
from typing import Any

from opsconsole.conf import Derived

DEFAULTS: dict[str, Any] = {
    # Paths still served while down (besides the admin and static files); /health/* never is
    # blocked because health.middleware answers it first.
    "OPS_MAINTENANCE_EXEMPT_PATHS": ["/metrics", "/api/"],
    "OPS_MAINTENANCE_RUN_RETENTION_DAYS": 90,
    "OPS_TEMP_DIRS": Derived(lambda s: [str(s.OPS_VAR_DIR / "tmp")]),
    "OPS_TEMP_MAX_AGE": timedelta(days=1),
}
