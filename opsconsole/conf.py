"""Setting defaults: every setting an app reads has a default inside that app.

Each app has a `conf` module with a `DEFAULTS` mapping. Its AppConfig applies it onto
`django.conf.settings` when Django creates the app config (before any model or task module is
imported), for every name the host project did not set; code then reads settings one way only,
`settings.OPS_...`. The standalone project's `opsconsole/settings.py` is one host among others:
it sets most names itself, from environment variables, and nothing imports it.

A default that depends on another setting is a `Derived` (computed once, from the settings as
they are when it is applied, so later entries may use earlier ones). Celery's own settings are
never defaulted here (a default written into the host's settings would change the host's own
Celery app): they are read from the running Celery app, see `celery_conf`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

from django.conf import settings

# Celery's task time limits when the host's Celery app sets none (seconds): ours need some.
TASK_SOFT_TIME_LIMIT = 300
TASK_TIME_LIMIT = 360


@dataclass(frozen=True)
class Derived:
    """A default computed from the settings already in place."""

    compute: Callable[[Any], Any]


def apply_defaults(defaults: Mapping[str, Any]) -> None:
    """Set each name of `defaults` that the host's settings lack, in order."""
    for name, value in defaults.items():
        if hasattr(settings, name):
            continue
        setattr(settings, name, value.compute(settings) if isinstance(value, Derived) else value)


# Applied in this order whichever app Django creates first: later defaults may use earlier ones.
APPS = (
    "opsconsole",
    "health",
    "errors",
    "metrics",
    "backups",
    "maintenance",
    "alerts",
    "queues",
    "console",
)


def apply_all_defaults() -> None:
    """Apply every app's `conf.DEFAULTS` (each AppConfig calls this; it is idempotent)."""
    for app_name in APPS:
        apply_defaults(import_module(f"{app_name}.conf").DEFAULTS)


def var_dir(s: Any) -> Path:
    """Where the console keeps files of its own: the host's BASE_DIR/var, else ./var."""
    return (Path(getattr(s, "BASE_DIR", None) or Path.cwd()) / "var").resolve()


def celery_conf() -> Any:
    """The configuration of the Celery app this process runs (the host's own)."""
    from celery import current_app

    return current_app.conf


def task_time_limits() -> tuple[int, int]:
    """(soft, hard) time limits of the host's Celery app, or ours when it sets none."""
    conf = celery_conf()
    soft = conf.task_soft_time_limit or TASK_SOFT_TIME_LIMIT
    hard = conf.task_time_limit or max(TASK_TIME_LIMIT, int(soft) + 60)
    return int(soft), int(hard)


DEFAULTS: dict[str, Any] = {
    "OPS_ENVIRONMENT": Derived(lambda s: "development" if s.DEBUG else "production"),
    "PRODUCTION": Derived(lambda s: s.OPS_ENVIRONMENT == "production"),
    # Only the standalone project knows whether its SECRET_KEY came from the environment.
    "SECRET_KEY_MISSING": False,
    "OPS_VAR_DIR": Derived(var_dir),
    # The name this machine's processes report as (metrics, health runs, heartbeats).
    "OPS_HOST_NAME": Derived(lambda s: socket.gethostname()),
    "OPS_SITE_NAME": "Ops Console",
    "OPS_PUBLIC_URL": "http://127.0.0.1:8000",
    "REDIS_URL": "",
    "REDIS_TIMEOUT": 1.0,
    "OPS_REDIS_KEY_PREFIX": "ops",
    "OPS_BROKER_PUBLISH_TIMEOUT": 0.4,
    "OPS_HTTP_ALLOW_NETWORKS": [],
    "OPS_ADMIN_OTP": False,
    "OPS_BEHIND_PROXY": False,
    "OPS_PROXY_HOPS": 0,
    "OPS_TRUSTED_PROXIES": [],
    "OPS_AUDIT_RETENTION_DAYS": 90,
    "OPS_TASK_RESULT_RETENTION_DAYS": 7,
    "OPS_RETENTION_BATCH_SIZE": 10_000,
    "OPS_LOG_FILE": "",
    "OPS_LOG_BACKUPS": 14,
    # django-axes, as the console configures it (the host's own values win).
    "AXES_CLIENT_IP_CALLABLE": "opsconsole.clientip.client_ip",
    "AXES_LOCKOUT_PARAMETERS": [["username", "ip_address"]],
    "AXES_RESET_ON_SUCCESS": True,
    "AXES_SENSITIVE_PARAMETERS": ["csrfmiddlewaretoken", "otp_token"],
}
