"""Configuration mistakes as system checks with stable ids (`manage.py check`).

ops.E001  SECRET_KEY missing in production
ops.E002  DEBUG on in production
ops.E003  BACKUP_STORAGE_URL has an unknown scheme
ops.E004  BACKUP_STORAGE_URL is s3:// without a bucket
ops.E005  health thresholds: the warn level is above the fail level
ops.W001  OPS_HEALTH_TOKEN is set but shorter than 16 characters
ops.W002  production runs on SQLite
ops.W003  production uses the filesystem broker
ops.W004  REDIS_URL is set but is not a redis:// or rediss:// URL
ops.W005  production backups are unencrypted (`check --deploy` only)
ops.W006  the admin site is not the console's (OpsAdminSite): no console pages or guarded actions
ops.W007  MIDDLEWARE lacks the console's entries, or has them out of order (opsconsole.host)
ops.W008  DATABASES has aliases besides "default", which backups do not cover
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from opsconsole.conf import celery_conf

BACKUP_SCHEMES = {"file", "s3"}


@register(Tags.security, deploy=False)
def check_production_secrets(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    problems: list[Any] = []
    if not settings.PRODUCTION:
        return problems
    if settings.SECRET_KEY_MISSING:
        problems.append(
            Error(
                "SECRET_KEY is not set.",
                hint="Set SECRET_KEY to a long random value, e.g. "
                "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`.",
                id="ops.E001",
            )
        )
    if settings.DEBUG:
        problems.append(
            Error(
                "DEBUG is on in production: tracebacks and settings would be shown to visitors.",
                hint="Unset DEBUG or set DEBUG=0.",
                id="ops.E002",
            )
        )
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        problems.append(
            Warning(
                "Production runs on SQLite.",
                hint="Set DATABASE_URL=postgres://... for concurrent web, worker and beat.",
                id="ops.W002",
            )
        )
    if str(celery_conf().broker_url or "").startswith("filesystem://"):
        problems.append(
            Warning(
                "Production uses the filesystem broker, which works on one host only.",
                hint="Set REDIS_URL (or CELERY_BROKER_URL) to a Redis server.",
                id="ops.W003",
            )
        )
    return problems


@register()
def check_backup_storage(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    url = settings.BACKUP_STORAGE_URL
    parts = urlsplit(url)
    if parts.scheme not in BACKUP_SCHEMES:
        return [
            Error(
                f"BACKUP_STORAGE_URL has the unknown scheme {parts.scheme or '(none)'!r}.",
                hint="Use file:///absolute/path or s3://bucket/prefix.",
                id="ops.E003",
            )
        ]
    if parts.scheme == "s3" and not parts.netloc:
        return [
            Error(
                "BACKUP_STORAGE_URL is s3:// without a bucket.",
                hint="Use s3://bucket/prefix, with AWS_* and AWS_ENDPOINT_URL_S3 for the endpoint.",
                id="ops.E004",
            )
        ]
    return []


@register()
def check_health_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    problems: list[Any] = []
    token = settings.OPS_HEALTH_TOKEN
    if token and len(token) < 16:
        problems.append(
            Warning(
                "OPS_HEALTH_TOKEN is shorter than 16 characters and can be guessed.",
                hint="Use a long random value, e.g. `python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'`.",
                id="ops.W001",
            )
        )
    for name in ("DISK", "MEMORY"):
        warn = getattr(settings, f"OPS_HEALTH_{name}_WARN")
        fail = getattr(settings, f"OPS_HEALTH_{name}_FAIL")
        if warn > fail:
            problems.append(
                Error(
                    f"OPS_HEALTH_{name}_WARN ({warn}) is above OPS_HEALTH_{name}_FAIL ({fail}).",
                    hint="The warn level must be at or below the fail level.",
                    id="ops.E005",
                )
            )
    redis_url = settings.REDIS_URL
    if redis_url and urlsplit(redis_url).scheme not in {"redis", "rediss", "unix"}:
        problems.append(
            Warning(
                f"REDIS_URL has the scheme {urlsplit(redis_url).scheme!r}.",
                hint="Use redis://host:6379/0 or rediss:// for TLS.",
                id="ops.W004",
            )
        )
    return problems


@register(Tags.security, deploy=True)
def check_backup_encryption(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    # Deploy-only: unencrypted dumps are fine on a laptop, but in production the storage
    # holds every secret of the database in clear text.
    if not settings.PRODUCTION or settings.OPS_BACKUP_ENCRYPTION_KEY:
        return []
    return [
        Warning(
            "Production backups are unencrypted: OPS_BACKUP_ENCRYPTION_KEY is not set.",
            hint="Set OPS_BACKUP_ENCRYPTION_KEY to a long random value and keep a copy "
            "outside the backup storage.",
            id="ops.W005",
        )
    ]


@register()
def check_admin_site(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    from django.apps import apps
    from django.contrib import admin

    from opsconsole.admintools import OpsAdminSite

    if not apps.is_installed("django.contrib.admin") or isinstance(admin.site, OpsAdminSite):
        return []
    return [
        Warning(
            "The admin site is Django's own, not the console's: the console's pages, guarded "
            "and audited actions and second factor are missing.",
            hint='Replace "django.contrib.admin" with "opsconsole.apps.OpsAdminConfig" in '
            "INSTALLED_APPS (opsconsole.host.installed_apps does).",
            id="ops.W006",
        )
    ]


@register()
def check_middleware_order(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    from opsconsole.host import middleware

    current = list(settings.MIDDLEWARE)
    try:
        expected = middleware(current)
    except ValueError as exc:
        expected, reason = [], str(exc)
    else:
        reason = ""
    if current == expected:
        return []
    return [
        Warning(
            "MIDDLEWARE lacks the console's entries or has them out of order: health probes, "
            "maintenance mode, request metrics or login throttling may not work.",
            hint=reason or f"Use MIDDLEWARE = opsconsole.host.middleware([...]), i.e. {expected}",
            id="ops.W007",
        )
    ]


@register()
def check_backed_up_databases(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    others = sorted(alias for alias in settings.DATABASES if alias != "default")
    if not others:
        return []
    return [
        Warning(
            f"Backups cover the 'default' database only, not {', '.join(others)}.",
            hint="Back those databases up by other means until the console covers them.",
            id="ops.W008",
        )
    ]
