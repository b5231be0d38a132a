"""Ops Console settings: one module, driven by environment variables.

This is the standalone console's project, one host configuration among others: every setting
an app reads also has a default inside that app (`<app>/conf.py`, applied by opsconsole.conf),
and no app imports this module. A new setting goes into its app's conf.py DEFAULTS first; it
appears here only when the standalone reads it from an environment variable (README: Settings).

Every variable is listed in README.md. Malformed values raise at import (typed helpers in
``opsconsole.env``); values that are well-formed but wrong for the environment (DEBUG in
production, a missing SECRET_KEY, an unknown storage scheme) surface as system checks with
stable ids, see ``opsconsole.system_checks``.
"""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from opsconsole import __version__
from opsconsole.env import (
    ConfigError,
    env_bool,
    env_duration,
    env_float,
    env_int,
    env_list,
    env_networks,
    env_str,
)
from opsconsole.host import beat_schedule as host_beat_schedule
from opsconsole.host import task_routes as host_task_routes

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("OPS_VAR_DIR") or BASE_DIR / "var").resolve()
OPS_VAR_DIR = VAR_DIR  # what the apps read (opsconsole.conf)
VERSION = __version__
# The name this machine's processes report as (metrics, health runs, heartbeats): the system's
# host name unless set, e.g. to a stable name where containers get random ones.
OPS_HOST_NAME = env_str("OPS_HOST_NAME") or socket.gethostname()

try:
    OPS_ENVIRONMENT = env_str("OPS_ENVIRONMENT", "development").lower()
    if OPS_ENVIRONMENT not in {"development", "production", "test"}:
        raise ConfigError(
            f"OPS_ENVIRONMENT={OPS_ENVIRONMENT!r}: use development, production or test"
        )
    PRODUCTION = OPS_ENVIRONMENT == "production"
    DEBUG = env_bool("DEBUG", default=OPS_ENVIRONMENT == "development")
except ConfigError as exc:
    raise ImproperlyConfigured(str(exc)) from None


def _development_secret_key() -> str:
    """A per-install key kept under var/, so sessions survive restarts in development."""
    path = VAR_DIR / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(50)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key


SECRET_KEY_MISSING = not env_str("SECRET_KEY")
if not SECRET_KEY_MISSING:
    SECRET_KEY = env_str("SECRET_KEY")
elif PRODUCTION:
    # ops.E001 reports this; the value only lets `manage.py check` run to say so.
    SECRET_KEY = "missing-" + "x" * 50  # noqa: S105
else:
    SECRET_KEY = _development_secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "opsconsole.theme",  # the console's admin/ templates, before the admin's own
    "opsconsole.apps.OpsAdminConfig",  # django.contrib.admin with the console's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    # Login throttling; before opsconsole, so a failure is counted before it is audited.
    "axes",
    # Second factor for the console (OPS_ADMIN_OTP); installed always so switching it on needs
    # no migration.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
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

MIDDLEWARE = [
    # First, so load-balancer probes are answered before ALLOWED_HOSTS, sessions or the database.
    "health.middleware.HealthProbeMiddleware",
    "opsconsole.middleware.RequestContextMiddleware",
    # Maintenance answers 503 before metrics: its responses and its state lookup are not
    # application traffic.
    "maintenance.middleware.MaintenanceModeMiddleware",
    "metrics.middleware.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: answers a locked-out login with 429.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "opsconsole.urls"
WSGI_APPLICATION = "opsconsole.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------
_env = environ.Env()
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
try:
    _db = _env.db_url_config(DATABASE_URL)
except Exception as exc:  # django-environ raises several types for unparsable URLs
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _name = Path(_db["NAME"])
    _db["NAME"] = str(_name if _name.is_absolute() else BASE_DIR / _name)
    # Waiting on a lock beats "database is locked" when web, worker and beat share the file.
    _db["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": ("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"),
    }
elif _db["ENGINE"] == "django.db.backends.postgresql":
    _db["OPTIONS"] = {"connect_timeout": env_int("OPS_DB_CONNECT_TIMEOUT", 3, minimum=1)}
    _db["CONN_MAX_AGE"] = env_int("OPS_DB_CONN_MAX_AGE", 60, minimum=0)
    _db["CONN_HEALTH_CHECKS"] = True
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache and Redis ------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
REDIS_TIMEOUT = env_float("OPS_REDIS_TIMEOUT", 1.0, minimum=0.05)
# Keys we write to Redis directly (outside the cache), e.g. the ingest rate-limit counters.
OPS_REDIS_KEY_PREFIX = env_str("OPS_REDIS_KEY_PREFIX", "ops")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "ops",
            # A hung Redis must cost a request a second, not a worker.
            "OPTIONS": {
                "socket_connect_timeout": REDIS_TIMEOUT,
                "socket_timeout": REDIS_TIMEOUT,
            },
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "ops_cache",
            "KEY_PREFIX": "ops",
        }
    }

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL or "filesystem://"
BROKER_DIR = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_connect_timeout": REDIS_TIMEOUT * 2,
        "socket_timeout": REDIS_TIMEOUT * 5,
        "visibility_timeout": 3600,
    }
# Publishing from a request (the error digest kick) gives up after this: a dead or silent
# broker costs a request at most about this long, never Celery's default publish retries.
OPS_BROKER_PUBLISH_TIMEOUT = env_float("OPS_BROKER_PUBLISH_TIMEOUT", 0.4, minimum=0.05)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "celery"
# Every task has time limits: these defaults, or its own (backups, maintenance) on its decorator.
# The soft limit raises inside the task so it can stop cleanly; the hard one kills the process.
CELERY_TASK_SOFT_TIME_LIMIT = int(env_duration("OPS_TASK_SOFT_TIME_LIMIT", "5m").total_seconds())
CELERY_TASK_TIME_LIMIT = int(env_duration("OPS_TASK_TIME_LIMIT", "6m").total_seconds())
if CELERY_TASK_TIME_LIMIT <= CELERY_TASK_SOFT_TIME_LIMIT:
    raise ImproperlyConfigured("OPS_TASK_TIME_LIMIT must be longer than OPS_TASK_SOFT_TIME_LIMIT")
# A worker process is replaced after a task leaves it above this resident memory (KiB for
# Celery; the setting is in MiB). 0 turns recycling off.
OPS_WORKER_MAX_MEMORY_MB = env_int("OPS_WORKER_MAX_MEMORY_MB", 512, minimum=0)
CELERY_WORKER_MAX_MEMORY_PER_CHILD = OPS_WORKER_MAX_MEMORY_MB * 1024 or None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# Code-declared schedules whose timing an operator may change in the admin (opsconsole.scheduler).
CELERY_BEAT_SCHEDULER = "opsconsole.scheduler:OpsScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Schedules are declared here and synced into django-celery-beat's tables at beat start-up;
# operators pause or retime them in the admin (Periodic tasks).
# CELERY_BEAT_SCHEDULE and CELERY_TASK_ROUTES follow the maintenance settings (opsconsole.host).

# --- email ----------------------------------------------------------------------------------
EMAIL_URL = env_str("EMAIL_URL")
if EMAIL_URL:
    globals().update(_env.email_url_config(EMAIL_URL))
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "ops-console@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- health ---------------------------------------------------------------------------------
OPS_HEALTH_TOKEN = env_str("OPS_HEALTH_TOKEN")
OPS_HEALTH_CHECK_TIMEOUT = env_float("OPS_HEALTH_CHECK_TIMEOUT", 2.0, minimum=0.1)
OPS_HEALTH_EXTERNAL_TIMEOUT = env_float("OPS_HEALTH_EXTERNAL_TIMEOUT", 5.0, minimum=0.1)
OPS_HEALTH_CACHE_TTL = env_float("OPS_HEALTH_CACHE_TTL", 2.0, minimum=0)
OPS_HEALTH_FAILED_TASKS_THRESHOLD = env_int("OPS_HEALTH_FAILED_TASKS_THRESHOLD", 10, minimum=0)
OPS_HEALTH_WORKER_MAX_AGE = env_float("OPS_HEALTH_WORKER_MAX_AGE", 60.0, minimum=1)
# The queue check fails when the oldest waiting task message is older than this: workers are
# alive (heartbeat) but none takes work, e.g. every pool process is busy or stuck.
OPS_HEALTH_QUEUE_MAX_WAIT = env_float("OPS_HEALTH_QUEUE_MAX_WAIT", 300.0, minimum=1)
# Per queue: warn when the oldest waiting task has waited this long (it fails at
# OPS_HEALTH_QUEUE_MAX_WAIT), and warn / fail at these depths. 0 turns a limit off.
OPS_HEALTH_QUEUE_WAIT_WARN = env_float("OPS_HEALTH_QUEUE_WAIT_WARN", 60.0, minimum=0)
OPS_HEALTH_QUEUE_DEPTH_WARN = env_int("OPS_HEALTH_QUEUE_DEPTH_WARN", 1000, minimum=0)
OPS_HEALTH_QUEUE_DEPTH_FAIL = env_int("OPS_HEALTH_QUEUE_DEPTH_FAIL", 10000, minimum=0)
# How many workers should be alive (0: not checked): fewer warns, naming the missing ones.
OPS_HEALTH_EXPECTED_WORKERS = env_int("OPS_HEALTH_EXPECTED_WORKERS", 0, minimum=0)
OPS_HEALTH_DISK_PATHS = env_list("OPS_HEALTH_DISK_PATHS", [str(VAR_DIR)])
OPS_HEALTH_DISK_WARN = env_float("OPS_HEALTH_DISK_WARN", 80.0, minimum=0)
OPS_HEALTH_DISK_FAIL = env_float("OPS_HEALTH_DISK_FAIL", 95.0, minimum=0)
OPS_HEALTH_MEMORY_WARN = env_float("OPS_HEALTH_MEMORY_WARN", 90.0, minimum=0)
OPS_HEALTH_MEMORY_FAIL = env_float("OPS_HEALTH_MEMORY_FAIL", 98.0, minimum=0)
OPS_HEALTH_RETENTION_DAYS = env_int("OPS_HEALTH_RETENTION_DAYS", 30, minimum=1)
OPS_HEALTH_CHECK_INTERVAL = env_duration("OPS_HEALTH_CHECK_INTERVAL", "60s").total_seconds()

# --- backups --------------------------------------------------------------------------------
BACKUP_STORAGE_URL = env_str("BACKUP_STORAGE_URL") or f"file://{VAR_DIR / 'backups'}"
AWS_ACCESS_KEY_ID = env_str("AWS_ACCESS_KEY_ID")
AWS_SECRET_ACCESS_KEY = env_str("AWS_SECRET_ACCESS_KEY")
AWS_ENDPOINT_URL_S3 = env_str("AWS_ENDPOINT_URL_S3")
AWS_DEFAULT_REGION = env_str("AWS_DEFAULT_REGION", "us-east-1")
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or VAR_DIR / "media")
MEDIA_URL = "media/"
# Alert when the newest completed backup is older than this (the RPO you promise).
OPS_BACKUP_MAX_AGE = env_duration("OPS_BACKUP_MAX_AGE", "26h").total_seconds()
OPS_BACKUP_PATHS = env_list("OPS_BACKUP_PATHS")
# Encrypts artifacts at rest when set; never logged, never stored.
OPS_BACKUP_ENCRYPTION_KEY = env_str("OPS_BACKUP_ENCRYPTION_KEY")
OPS_BACKUP_KEEP_ALL_DAYS = env_int("OPS_BACKUP_KEEP_ALL_DAYS", 7, minimum=1)
OPS_BACKUP_KEEP_DAILY_DAYS = env_int("OPS_BACKUP_KEEP_DAILY_DAYS", 16, minimum=0)
OPS_BACKUP_KEEP_WEEKLY_WEEKS = env_int("OPS_BACKUP_KEEP_WEEKLY_WEEKS", 8, minimum=0)
OPS_BACKUP_KEEP_MONTHLY_MONTHS = env_int("OPS_BACKUP_KEEP_MONTHLY_MONTHS", 4, minimum=0)
OPS_BACKUP_KEEP_YEARLY_YEARS = env_int("OPS_BACKUP_KEEP_YEARLY_YEARS", 2, minimum=0)
OPS_BACKUP_MAX_STORAGE_MB = env_int("OPS_BACKUP_MAX_STORAGE_MB", 5000, minimum=0)
OPS_BACKUP_FAILED_KEEP_DAYS = env_int("OPS_BACKUP_FAILED_KEEP_DAYS", 30, minimum=1)
OPS_BACKUP_STALE_AFTER = env_duration("OPS_BACKUP_STALE_AFTER", "1h").total_seconds()
OPS_BACKUP_S3_PART_SIZE = env_int("OPS_BACKUP_S3_PART_SIZE", 16 * 1024 * 1024, minimum=5 * 1024**2)
OPS_BACKUP_PG_BIN_DIR = env_str("OPS_BACKUP_PG_BIN_DIR")
OPS_BACKUP_PG_COMPRESS = env_str("OPS_BACKUP_PG_COMPRESS")  # pg_dump --compress; "" = its default
OPS_BACKUP_RESTORE_JOBS = env_int("OPS_BACKUP_RESTORE_JOBS", 2, minimum=1)
OPS_BACKUP_TMP_DIR = env_str("OPS_BACKUP_TMP_DIR")
# Soft time limit of the backup and verify tasks (the hard one is 10 minutes later).
OPS_BACKUP_TASK_TIME_LIMIT = int(env_duration("OPS_BACKUP_TASK_TIME_LIMIT", "6h").total_seconds())
OPS_BACKUP_HOUR = env_int("OPS_BACKUP_HOUR", 2, minimum=0)
if OPS_BACKUP_HOUR > 23:
    raise ImproperlyConfigured(f"OPS_BACKUP_HOUR={OPS_BACKUP_HOUR}: use an hour from 0 to 23")

# --- errors ---------------------------------------------------------------------------------
SENTRY_DSN = env_str("SENTRY_DSN")
# Where users reach the console: DSNs and every link in alerts are built from it.
# ALERTS_CONSOLE_URL is its deprecated alias, read only when OPS_PUBLIC_URL is not set.
OPS_PUBLIC_URL = (
    env_str("OPS_PUBLIC_URL") or env_str("ALERTS_CONSOLE_URL") or "http://127.0.0.1:8000"
).rstrip("/")
# Capture our own errors through sentry-sdk (in-process transport). Off under the test settings;
# tests that need it turn it on explicitly.
OPS_ERRORS_CAPTURE = env_bool("OPS_ERRORS_CAPTURE", OPS_ENVIRONMENT != "test")
OPS_ERRORS_OWN_PROJECT = env_str("OPS_ERRORS_OWN_PROJECT", "Ops Console")
# Our own capture must not be a way to fill storage: events per minute per process (token
# bucket), django.security.* events (bad Host headers and the like, which an outsider can send
# at will) per minute per process (0 drops them), and the on-disk spool's size.
OPS_ERRORS_CAPTURE_PER_MINUTE = env_int("OPS_ERRORS_CAPTURE_PER_MINUTE", 60, minimum=1)
OPS_ERRORS_CAPTURE_SECURITY_PER_MINUTE = env_int(
    "OPS_ERRORS_CAPTURE_SECURITY_PER_MINUTE", 2, minimum=0
)
# Send the local variables of each stack frame with our own errors (off: they can hold
# credentials and personal data; the scrub catches named secrets, not everything).
OPS_ERRORS_CAPTURE_LOCALS = env_bool("OPS_ERRORS_CAPTURE_LOCALS", False)
OPS_ERRORS_SPOOL_MAX_FILES = env_int("OPS_ERRORS_SPOOL_MAX_FILES", 1000, minimum=1)
OPS_ERRORS_SPOOL_MAX_BYTES = env_int("OPS_ERRORS_SPOOL_MAX_BYTES", 64 * 2**20, minimum=1024)
OPS_ERRORS_MAX_ENVELOPE_BYTES = env_int("OPS_ERRORS_MAX_ENVELOPE_BYTES", 20 * 2**20, minimum=1024)
OPS_ERRORS_MAX_DECOMPRESSED_BYTES = env_int(
    "OPS_ERRORS_MAX_DECOMPRESSED_BYTES", 64 * 2**20, minimum=1024
)
OPS_ERRORS_MAX_EVENT_BYTES = env_int("OPS_ERRORS_MAX_EVENT_BYTES", 2**20, minimum=1024)
OPS_ERRORS_MAX_HEADER_BYTES = env_int("OPS_ERRORS_MAX_HEADER_BYTES", 8192, minimum=256)
OPS_ERRORS_SCRUB_FIELDS = env_list(
    "OPS_ERRORS_SCRUB_FIELDS",
    [
        "password", "passwd", "pwd", "secret", "token", "api_key", "apikey", "access_key",
        "private_key", "privatekey", "auth", "credentials", "cookie", "session", "csrf",
        "bearer", "mysql_pwd", "card", "cvv", "iban", "passphrase", "dsn",
    ],
)  # fmt: skip
OPS_ERRORS_DIGEST_BATCH = env_int("OPS_ERRORS_DIGEST_BATCH", 500, minimum=1)
# A batch also stops at this many payload bytes (at least one event), so memory stays bounded.
OPS_ERRORS_DIGEST_BATCH_BYTES = env_int("OPS_ERRORS_DIGEST_BATCH_BYTES", 16 * 2**20, minimum=1024)
# A batch, or one event retried alone, may take this long; past it the event counts as failed.
OPS_ERRORS_DIGEST_TIME_LIMIT = env_duration("OPS_ERRORS_DIGEST_TIME_LIMIT", "30s").total_seconds()
# An event whose digest fails is retried after DELAY x attempts, then quarantined in the inbox.
OPS_ERRORS_DIGEST_MAX_ATTEMPTS = env_int("OPS_ERRORS_DIGEST_MAX_ATTEMPTS", 3, minimum=1)
OPS_ERRORS_DIGEST_RETRY_DELAY = env_duration("OPS_ERRORS_DIGEST_RETRY_DELAY", "30s").total_seconds()
# The digest runs on its own queue, so an ingest flood never delays health, alerts or backups.
OPS_ERRORS_DIGEST_QUEUE = env_str("OPS_ERRORS_DIGEST_QUEUE", "ingest")
# Health component "errors": warn / fail when the oldest undigested event waits this long.
OPS_ERRORS_BACKLOG_WARN = env_duration("OPS_ERRORS_BACKLOG_WARN", "5m").total_seconds()
OPS_ERRORS_BACKLOG_FAIL = env_duration("OPS_ERRORS_BACKLOG_FAIL", "30m").total_seconds()
# Safety net: ingest kicks the digest itself; beat drains anything left behind this often.
OPS_ERRORS_DIGEST_INTERVAL = env_duration("OPS_ERRORS_DIGEST_INTERVAL", "15s").total_seconds()

# --- outbound HTTP ------------------------------------------------------------------------
OPS_HTTP_ALLOW_NETWORKS = env_list("OPS_HTTP_ALLOW_NETWORKS")

# --- metrics --------------------------------------------------------------------------------
OPS_METRICS_TOKEN = env_str("OPS_METRICS_TOKEN")
# Without a token, /metrics is open outside production; in production it must be opened on purpose.
OPS_METRICS_PUBLIC = env_bool("OPS_METRICS_PUBLIC", default=not PRODUCTION)
OPS_METRICS_KEY_PREFIX = env_str("OPS_METRICS_KEY_PREFIX", "ops:metrics")
# Seconds between flushes of each process's counters; 0 = only explicit flushes (tests).
OPS_METRICS_FLUSH_INTERVAL = env_float(
    "OPS_METRICS_FLUSH_INTERVAL", 0.0 if OPS_ENVIRONMENT == "test" else 5.0, minimum=0
)
OPS_METRICS_SLOW_REQUEST_MS = env_float("OPS_METRICS_SLOW_REQUEST_MS", 1000.0, minimum=0)
OPS_METRICS_SLOW_QUERY_MS = env_float("OPS_METRICS_SLOW_QUERY_MS", 100.0, minimum=0)
OPS_METRICS_DISK_PATHS = env_list("OPS_METRICS_DISK_PATHS", ["/"])
OPS_METRICS_QUEUES = env_list(
    "OPS_METRICS_QUEUES", [CELERY_TASK_DEFAULT_QUEUE, OPS_ERRORS_DIGEST_QUEUE]
)
OPS_METRICS_RAW_DAYS = env_int("OPS_METRICS_RAW_DAYS", 7, minimum=1)
OPS_METRICS_HOURLY_DAYS = env_int("OPS_METRICS_HOURLY_DAYS", 90, minimum=1)
OPS_METRICS_DAILY_DAYS = env_int("OPS_METRICS_DAILY_DAYS", 730, minimum=1)
OPS_METRICS_ACTIVE_USER_WINDOW = env_duration("OPS_METRICS_ACTIVE_USER_WINDOW", "5m")
# Every web, worker and beat process starts the host sampler; one per host samples
# (metrics.sampler). Off in tests, which sample explicitly.
OPS_HOST_SAMPLER = env_bool("OPS_HOST_SAMPLER", default=OPS_ENVIRONMENT != "test")
OPS_HOST_SAMPLE_INTERVAL = env_duration("OPS_HOST_SAMPLE_INTERVAL", "60s").total_seconds()
# A host that reported and then sent nothing for this long is missing (alert, console).
OPS_HOST_MISSING_AFTER = env_duration("OPS_HOST_MISSING_AFTER", "3m").total_seconds()
OPS_METRICS_COLLECT_INTERVAL = env_duration("OPS_METRICS_COLLECT_INTERVAL", "60s").total_seconds()
OPS_METRICS_ROLLUP_INTERVAL = env_duration("OPS_METRICS_ROLLUP_INTERVAL", "10m").total_seconds()

# --- console (the dashboard) ---------------------------------------------------------------
# The availability objective uptime is measured against, in percent (error budget = the rest).
OPS_SLO_TARGET = env_float("OPS_SLO_TARGET", 99.9, minimum=0)
# The p95 response time the dashboard compares against, unless a threshold on
# response_time_p95_ms sets a warning level.
OPS_LATENCY_TARGET_MS = env_float("OPS_LATENCY_TARGET_MS", 200.0, minimum=1)

# --- alerts ---------------------------------------------------------------------------------
# Alertmanager's defaults: wait 30 s to group, repeat an unchanged firing alert every 4 h.
ALERTS_GROUP_WAIT = env_duration("ALERTS_GROUP_WAIT", "30s")
ALERTS_REPEAT_INTERVAL = env_duration("ALERTS_REPEAT_INTERVAL", "4h")
ALERTS_MAX_ATTEMPTS = env_int("ALERTS_MAX_ATTEMPTS", 6, minimum=1)
ALERTS_RETRY_BACKOFF = env_duration("ALERTS_RETRY_BACKOFF", "10s")
ALERTS_RETRY_BACKOFF_MAX = env_duration("ALERTS_RETRY_BACKOFF_MAX", "15m")
ALERTS_HTTP_TIMEOUT = env_float("ALERTS_HTTP_TIMEOUT", 5.0, minimum=0.1)
ALERTS_SMTP_TIMEOUT = env_float("ALERTS_SMTP_TIMEOUT", 10.0, minimum=0.1)
ALERTS_RETENTION_DAYS = env_int("ALERTS_RETENTION_DAYS", 30, minimum=1)
ALERTS_DISPATCH_INTERVAL = env_duration("ALERTS_DISPATCH_INTERVAL", "10s").total_seconds()

# --- maintenance ----------------------------------------------------------------------------

# Paths still served while down (besides the admin and static files); /health/* never is
# blocked because health.middleware answers it first.
OPS_MAINTENANCE_EXEMPT_PATHS = env_list("OPS_MAINTENANCE_EXEMPT_PATHS", ["/metrics", "/api/"])
OPS_SITE_NAME = env_str("OPS_SITE_NAME", "Ops Console")
OPS_AUDIT_RETENTION_DAYS = env_int("OPS_AUDIT_RETENTION_DAYS", 90, minimum=1)
OPS_TASK_RESULT_RETENTION_DAYS = env_int("OPS_TASK_RESULT_RETENTION_DAYS", 7, minimum=1)
OPS_MAINTENANCE_RUN_RETENTION_DAYS = env_int("OPS_MAINTENANCE_RUN_RETENTION_DAYS", 90, minimum=1)
# Failed tasks and per-minute task runtimes (queues app) older than this are deleted.
OPS_QUEUES_RETENTION_DAYS = env_int("OPS_QUEUES_RETENTION_DAYS", 30, minimum=1)
OPS_RETENTION_BATCH_SIZE = env_int("OPS_RETENTION_BATCH_SIZE", 10_000, minimum=1)
if OPS_RETENTION_BATCH_SIZE > 10_000:
    raise ImproperlyConfigured("OPS_RETENTION_BATCH_SIZE must be at most 10000")
OPS_TEMP_DIRS = env_list("OPS_TEMP_DIRS", [str(VAR_DIR / "tmp")])
OPS_TEMP_MAX_AGE = env_duration("OPS_TEMP_MAX_AGE", "1d")

# --- Celery beat schedule and routes ----------------------------------------------------------
# The same functions a host project calls (README: Add it to an existing project), given this
# module's settings so far for the intervals, the backup hour and the digest's queue. Declared
# in code and synced into django-celery-beat's tables at beat start-up; operators pause or
# retime them in the admin (Periodic tasks).
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = host_beat_schedule(globals())
CELERY_TASK_ROUTES = host_task_routes(globals())

# --- static files, i18n, auth -----------------------------------------------------------------
STATIC_URL = "static/"
# Separate from OPS_VAR_DIR so an image built with collectstatic keeps its files (and manifest)
# when the data directory is a mounted volume.
STATIC_ROOT = Path(env_str("OPS_STATIC_ROOT") or VAR_DIR / "static").resolve()
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
# Login throttling (django-axes): OPS_LOGIN_FAILURE_LIMIT failed logins for one username from
# one client address lock that pair out for OPS_LOGIN_COOLOFF; each further try during the
# lockout extends it. The address is our proxy-aware client IP (opsconsole.clientip).
AUTHENTICATION_BACKENDS = [
    "opsconsole.auth.ThrottledLoginBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("OPS_LOGIN_THROTTLING", True)
AXES_FAILURE_LIMIT = env_int("OPS_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env_duration("OPS_LOGIN_COOLOFF", "15m")
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "opsconsole.clientip.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# Never stored in the attempt records: the password (always), the CSRF token, a TOTP code.
AXES_SENSITIVE_PARAMETERS = ["csrfmiddlewaretoken", "otp_token"]
# OPS_ADMIN_OTP=1: the console asks for a TOTP code (django-otp) at login and admits only
# sessions verified by one; each operator needs a confirmed TOTP device (README: Console).
OPS_ADMIN_OTP = env_bool("OPS_ADMIN_OTP", False)
OTP_TOTP_ISSUER = OPS_SITE_NAME

# --- security -------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = env_bool("OPS_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_SSL_REDIRECT = env_bool("OPS_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("OPS_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("OPS_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("OPS_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading commits the whole registered domain to HTTPS forever: an explicit
        # per-domain decision (OPS_HSTS_PRELOAD=1), not a default.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
OPS_BEHIND_PROXY = env_bool("OPS_BEHIND_PROXY", False)
if OPS_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Which X-Forwarded-For hops to believe (opsconsole.clientip): each trusted proxy appends the
# address it saw, so only the rightmost entries are ours; everything left of them is whatever
# the client sent. Trusted CIDRs, when given, take precedence over counting hops.
OPS_PROXY_HOPS = env_int("OPS_PROXY_HOPS", 1, minimum=0) if OPS_BEHIND_PROXY else 0
OPS_TRUSTED_PROXIES = env_networks("OPS_TRUSTED_PROXIES") if OPS_BEHIND_PROXY else []

# --- logging --------------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOG_FORMAT = env_str("OPS_LOG_FORMAT", "json" if PRODUCTION else "console").lower()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "opsconsole.logs.RequestContextFilter"}},
    "formatters": {
        "json": {"()": "opsconsole.logs.JsonFormatter"},
        "console": {
            "format": "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s",
        },
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "console",
            "filters": ["request_context"],
        },
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # Probes that fail are reported by the health service, once per transition.
        "health_check": {"level": "ERROR"},
        "django.db.backends": {"level": "INFO"},
    },
}
# Also write JSON lines to a file when asked; the daily maintenance rotates and gzips it,
# keeping OPS_LOG_BACKUPS files (and so does the handler itself past OPS_LOG_MAX_BYTES).
OPS_LOG_FILE = env_str("OPS_LOG_FILE")
OPS_LOG_BACKUPS = env_int("OPS_LOG_BACKUPS", 14, minimum=1)
OPS_LOG_MAX_BYTES = env_int("OPS_LOG_MAX_BYTES", 0, minimum=0)
if OPS_LOG_FILE:
    LOGGING["handlers"]["file"] = {  # type: ignore[index]
        "()": "opsconsole.logs.OpsFileHandler",
        "filename": OPS_LOG_FILE,
        "maxBytes": OPS_LOG_MAX_BYTES,
        "backupCount": OPS_LOG_BACKUPS,
        "formatter": "json",
        "filters": ["request_context"],
    }
    LOGGING["root"]["handlers"].append("file")  # type: ignore[index]
