"""What a host project adds to its settings and Celery app to run Ops Console inside it.

README, "Add it to an existing project", shows each step. Everything here is plain data or a
function of the host's own lists, so it can be called from a settings module (before Django is
configured); the standalone project (`opsconsole.settings`, `opsconsole.celery`) uses the same
functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import import_module
from typing import Any

# Listed before django.contrib.admin: its admin/ templates override the admin's.
THEME_APP = "opsconsole.theme"
ADMIN_APP = "opsconsole.apps.OpsAdminConfig"
# Third-party apps the console relies on, then its own, in this order: django-axes before
# opsconsole, so a failed login is counted before it is audited.
APPS = [
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_celery_beat",
    "django_celery_results",
    "health_check",
    "opsconsole",
    "health",
    "metrics",
    "errors",
    "backups",
    "maintenance",
    "alerts",
    "queues",
    "console",
]

# First in MIDDLEWARE, in this order: load-balancer probes are answered before ALLOWED_HOSTS,
# sessions or the database; then the request id; maintenance answers 503 before metrics (its
# responses are not application traffic); then the request metrics time everything else.
MIDDLEWARE_FIRST = [
    "health.middleware.HealthProbeMiddleware",
    "opsconsole.middleware.RequestContextMiddleware",
    "maintenance.middleware.MaintenanceModeMiddleware",
    "metrics.middleware.RequestMetricsMiddleware",
]
# Right after django.contrib.auth's AuthenticationMiddleware: the console's second factor.
MIDDLEWARE_AFTER_AUTH = ["django_otp.middleware.OTPMiddleware"]
# Last: answers a locked-out login with 429.
MIDDLEWARE_LAST = ["axes.middleware.AxesMiddleware"]
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"

# First in AUTHENTICATION_BACKENDS: login throttling (django-axes) for the login forms.
AUTHENTICATION_BACKEND = "opsconsole.auth.ThrottledLoginBackend"

DIGEST_TASK = "errors.tasks.digest_inbox"


def installed_apps(existing: Sequence[str]) -> list[str]:
    """The host's INSTALLED_APPS with the console's added: its templates app before the admin,
    the admin as the console's site (OpsAdminSite), the rest after the host's apps."""
    apps = [a for a in existing if a not in (THEME_APP, *APPS)]
    stock_admin = "django.contrib.admin"
    at = apps.index(stock_admin) if stock_admin in apps else 0
    apps = [ADMIN_APP if a == stock_admin else a for a in apps]
    if ADMIN_APP not in apps:
        apps.insert(at, ADMIN_APP)
    apps.insert(apps.index(ADMIN_APP), THEME_APP)
    return [*apps, *APPS]


def middleware(existing: Sequence[str]) -> list[str]:
    """The host's MIDDLEWARE with the console's entries, each where its order matters."""
    ours = {*MIDDLEWARE_FIRST, *MIDDLEWARE_AFTER_AUTH, *MIDDLEWARE_LAST}
    chain = [m for m in existing if m not in ours]
    if AUTH_MIDDLEWARE not in chain:
        raise ValueError(f"MIDDLEWARE must contain {AUTH_MIDDLEWARE} (the console has a login)")
    at = chain.index(AUTH_MIDDLEWARE) + 1
    chain[at:at] = MIDDLEWARE_AFTER_AUTH
    return [*MIDDLEWARE_FIRST, *chain, *MIDDLEWARE_LAST]


def authentication_backends(existing: Sequence[str]) -> list[str]:
    """The host's AUTHENTICATION_BACKENDS with login throttling first."""
    return [AUTHENTICATION_BACKEND, *(b for b in existing if b != AUTHENTICATION_BACKEND)]


def _setting(values: Mapping[str, Any] | None, name: str) -> Any:
    """`name` from the host's settings so far, else the default of the app that owns it."""
    if values is not None and name in values:
        return values[name]
    for app in ("opsconsole", "health", "errors", "metrics", "backups", "alerts"):
        defaults = import_module(f"{app}.conf").DEFAULTS
        if name in defaults:
            return defaults[name]
    raise KeyError(name)


def beat_schedule(values: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The console's periodic tasks, for `CELERY_BEAT_SCHEDULE.update(...)`.

    `values`: the host's settings so far (`globals()` in a settings module), for the timing
    settings it overrides (OPS_HEALTH_CHECK_INTERVAL, OPS_ERRORS_DIGEST_INTERVAL,
    OPS_METRICS_COLLECT_INTERVAL, OPS_METRICS_ROLLUP_INTERVAL, ALERTS_DISPATCH_INTERVAL in
    seconds; OPS_BACKUP_HOUR); the others take the apps' defaults."""
    from celery.schedules import crontab

    def seconds(name: str) -> float:
        value = _setting(values, name)
        return float(value.total_seconds() if hasattr(value, "total_seconds") else value)

    hour = int(_setting(values, "OPS_BACKUP_HOUR"))
    collect = seconds("OPS_METRICS_COLLECT_INTERVAL")
    entries: dict[str, tuple[str, Any]] = {
        "perform-health-check": (
            "health.tasks.perform_health_check",
            seconds("OPS_HEALTH_CHECK_INTERVAL"),
        ),
        # Monday to Saturday: Sunday's backup is the weekly upkeep's (backup, then verify it),
        # so no two backups run together and backups stay 24 h apart.
        "backups-daily": (
            "backups.tasks.run_scheduled_backup",
            crontab(minute=0, hour=hour, day_of_week="1-6"),
        ),
        # Safety net: ingest kicks the digest itself; this drains anything left behind.
        "errors-digest-inbox": (DIGEST_TASK, seconds("OPS_ERRORS_DIGEST_INTERVAL")),
        "metrics-collect-performance": ("metrics.tasks.collect_performance_metrics", collect),
        "metrics-collect-resources": ("metrics.tasks.collect_resource_usage", collect),
        # Hosts that stopped reporting: marked missing and alerted once.
        "metrics-find-missing-hosts": ("metrics.tasks.find_missing_hosts", 60.0),
        "metrics-roll-up": (
            "metrics.tasks.roll_up_metrics",
            seconds("OPS_METRICS_ROLLUP_INTERVAL"),
        ),
        "alerts-dispatch": ("alerts.tasks.dispatch_due", seconds("ALERTS_DISPATCH_INTERVAL")),
        "check-maintenance-windows": ("maintenance.tasks.check_maintenance_windows", 60.0),
        "perform-daily-maintenance": (
            "maintenance.tasks.perform_daily_maintenance",
            crontab(minute="30", hour="3"),
        ),
        "perform-weekly-maintenance": (
            "maintenance.tasks.perform_weekly_maintenance",
            crontab(minute="0", hour=hour, day_of_week="sun"),
        ),
    }
    return {name: {"task": task, "schedule": when} for name, (task, when) in entries.items()}


def task_routes(values: Mapping[str, Any] | None = None) -> dict[str, dict[str, str]]:
    """The console's task routes, for `CELERY_TASK_ROUTES`: the error digest on its own queue
    (OPS_ERRORS_DIGEST_QUEUE), so an ingest flood never delays the host's tasks."""
    return {DIGEST_TASK: {"queue": str(_setting(values, "OPS_ERRORS_DIGEST_QUEUE"))}}


def task_queues(values: Mapping[str, Any] | None = None) -> list[str]:
    """The queues the console's tasks run on beyond the host's default one; a worker must
    consume them (`celery worker -Q celery,ingest`, or a worker of their own)."""
    return sorted({route["queue"] for route in task_routes(values).values()})


def setup_celery(app: Any) -> None:
    """Prepare the host's Celery app (call it where the app is created): each worker records
    its heartbeat (the queue health check reads it), a Redis restart does not end a worker, and
    a production worker or beat without a SECRET_KEY refuses to start."""
    from celery import signals

    from health.worker import HeartbeatStep
    from opsconsole import brokerfix

    brokerfix.install()
    if HeartbeatStep not in app.steps["consumer"]:
        app.steps["consumer"].add(HeartbeatStep)
    signals.worker_init.connect(_refuse_unsafe_worker, weak=False)
    signals.beat_init.connect(_refuse_unsafe_beat, weak=False)


def _refuse_unsafe_worker(**kwargs: object) -> None:
    from opsconsole.startup import refuse_unsafe_start

    refuse_unsafe_start("worker")


def _refuse_unsafe_beat(**kwargs: object) -> None:
    from opsconsole.startup import refuse_unsafe_start

    refuse_unsafe_start("beat")
