"""The upkeep steps. Each takes `now` and returns counts; raising marks the step failed,
`StepSkipped` marks it skipped (nothing to do here, e.g. no log file configured)."""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.cache import caches
from django.db import connection

from opsconsole.logs import rotate_log_file
from opsconsole.retention import BATCH_SIZE

logger = logging.getLogger(__name__)


class StepSkipped(Exception):  # noqa: N818 - it is an outcome, not an error
    """The step has nothing to do in this deployment; the reason is recorded."""


# --- cache -----------------------------------------------------------------------------------
def purge_expired_cache(now: datetime) -> dict[str, Any]:
    """Remove expired entries only; live entries are never touched (no flush)."""
    counts: dict[str, Any] = {}
    for alias, conf in settings.CACHES.items():
        backend = str(conf["BACKEND"]).rsplit(".", 1)[-1]
        if backend == "DatabaseCache":
            table = str(conf["LOCATION"])
            counts[alias] = {"expired_rows_deleted": _purge_db_cache(table, now)}
        elif backend == "RedisCache":
            counts[alias] = _purge_redis_cache(alias)
        elif backend == "FileBasedCache":
            counts[alias] = {"expired_files_deleted": _purge_file_cache(alias)}
        else:
            counts[alias] = {"skipped": f"{backend} keeps entries per process; they expire on read"}
    return counts


def _purge_db_cache(table: str, now: datetime) -> int:
    qn = connection.ops.quote_name
    expires = connection.ops.adapt_datetimefield_value(now)
    # Batched like every other retention delete, so the cache table is never locked for long.
    sql = (
        f"DELETE FROM {qn(table)} WHERE cache_key IN "  # noqa: S608 - quoted table name
        f"(SELECT cache_key FROM {qn(table)} WHERE expires < %s LIMIT {BATCH_SIZE})"
    )
    total = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql, [expires])
            deleted = cursor.rowcount
        total += max(deleted, 0)
        if deleted < BATCH_SIZE:
            return total


def _purge_redis_cache(alias: str) -> dict[str, int]:
    """Redis drops expired keys by itself; a SCAN over our prefix makes it reclaim ours now.

    Redis does not say which keys a SCAN expired, so the figure reported is the growth of its
    server-wide `expired_keys` counter during the scan (an upper bound for our keys)."""
    cache: Any = caches[alias]
    client = cache._cache.get_client(write=True)
    prefix = cache.key_prefix
    pattern = f"{prefix}:*" if prefix else "*"
    before = int(client.info("stats").get("expired_keys", 0))
    scanned = sum(1 for _ in client.scan_iter(match=pattern, count=1000))
    after = int(client.info("stats").get("expired_keys", 0))
    return {"live_keys_seen": scanned, "expired_keys_reclaimed_server_wide": after - before}


def _purge_file_cache(alias: str) -> int:
    cache: Any = caches[alias]
    deleted = 0
    for fname in cache._list_cache_files():
        try:
            with open(fname, "rb") as fh:
                if cache._is_expired(fh):  # deletes the file when expired
                    deleted += 1
        except FileNotFoundError:
            continue
    return deleted


# --- database --------------------------------------------------------------------------------
def our_tables() -> list[str]:
    """Tables of installed models (and DB cache tables) that exist in the default database."""
    existing = set(connection.introspection.table_names())
    tables = {m._meta.db_table for m in apps.get_models(include_auto_created=True)}
    for conf in settings.CACHES.values():
        if str(conf["BACKEND"]).endswith("DatabaseCache"):
            tables.add(str(conf["LOCATION"]))
    return sorted(tables & existing)


def optimize_database(now: datetime) -> dict[str, Any]:
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA optimize")
        return {"pragma_optimize": 1}
    if connection.vendor != "postgresql":
        raise StepSkipped(f"no optimisation for {connection.vendor}")
    if connection.in_atomic_block:
        # VACUUM cannot run inside a transaction block; callers must not wrap the run in one.
        raise RuntimeError("VACUUM needs autocommit: run maintenance outside a transaction")
    return _per_table("VACUUM (ANALYZE) {}", "vacuumed")


def update_statistics(now: datetime) -> dict[str, Any]:
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        return {"analyzed": 1}
    if connection.vendor != "postgresql":
        raise StepSkipped(f"no statistics update for {connection.vendor}")
    return _per_table("ANALYZE {}", "analyzed")


def _per_table(template: str, key: str) -> dict[str, Any]:
    done = 0
    slowest: tuple[str, float] = ("", 0.0)
    errors: list[str] = []
    for table in our_tables():
        began = time.monotonic()
        try:
            with connection.cursor() as cursor:
                cursor.execute(template.format(connection.ops.quote_name(table)))
        except Exception as exc:
            errors.append(f"{table}: {exc}")
            continue
        done += 1
        took = time.monotonic() - began
        if took > slowest[1]:
            slowest = (table, took)
    counts: dict[str, Any] = {
        key: done,
        "slowest_table": slowest[0],
        "slowest_ms": round(slowest[1] * 1000, 1),
    }
    if errors:
        counts["errors"] = errors
    return counts


# --- retention -------------------------------------------------------------------------------
def cleanup_functions() -> dict[str, Any]:
    """`APP.services.cleanup` of every installed app that has one, by app label."""
    found: dict[str, Any] = {}
    for config in apps.get_app_configs():
        module_name = f"{config.name}.services"
        try:
            if find_spec(module_name) is None:
                continue
        except ModuleNotFoundError:
            continue
        module = import_module(module_name)
        cleanup = getattr(module, "cleanup", None)
        if callable(cleanup):
            found[config.label] = cleanup
    return found


def retention_cleanup(now: datetime) -> dict[str, Any]:
    """The CleanUpOldData job: every app's cleanup(), each isolated from the others' failures."""
    deleted: dict[str, dict[str, int]] = {}
    errors: list[str] = []
    for label, cleanup in cleanup_functions().items():
        try:
            deleted[label] = dict(cleanup(now=now) or {})
        except Exception as exc:
            logger.exception("cleanup of %s failed", label)
            errors.append(f"{label}: {type(exc).__name__}: {exc}")
    counts: dict[str, Any] = {
        "deleted": deleted,
        "total": sum(sum(v for v in d.values() if isinstance(v, int)) for d in deleted.values()),
    }
    if errors:
        counts["errors"] = errors
    return counts


# --- files -----------------------------------------------------------------------------------
def clean_temp_files(now: datetime) -> dict[str, Any]:
    dirs = [Path(d) for d in settings.OPS_TEMP_DIRS]
    if not dirs:
        raise StepSkipped("OPS_TEMP_DIRS is empty")
    cutoff = now.timestamp() - settings.OPS_TEMP_MAX_AGE.total_seconds()
    files = size = 0
    errors: list[str] = []
    missing: list[str] = []
    for root in dirs:
        if not root.exists():
            missing.append(str(root))
            continue
        if not root.is_dir():
            errors.append(f"{root} is not a directory (check OPS_TEMP_DIRS)")
            continue
        for dirpath, dirnames, filenames in os.walk(root, topdown=False, followlinks=False):
            for name in filenames:
                path = os.path.join(dirpath, name)
                try:
                    info = os.lstat(path)
                    if info.st_mtime < cutoff:
                        os.unlink(path)
                        files += 1
                        size += info.st_size
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    errors.append(f"{path}: {exc.strerror}")
            for name in dirnames:
                path = os.path.join(dirpath, name)
                try:
                    if os.path.islink(path):
                        if os.lstat(path).st_mtime < cutoff:
                            os.unlink(path)
                            files += 1
                    elif not os.listdir(path) and os.stat(path).st_mtime < cutoff:
                        os.rmdir(path)
                except OSError:
                    continue  # in use or not empty any more: next time
    counts: dict[str, Any] = {"files_deleted": files, "bytes_freed": size}
    if missing:
        counts["missing_dirs"] = missing
    if errors:
        counts["errors"] = errors[:20]
    return counts


def rotate_logs(now: datetime) -> dict[str, Any]:
    path = settings.OPS_LOG_FILE
    if not path:
        raise StepSkipped("OPS_LOG_FILE is not set: logs go to stdout only")
    rotated = rotate_log_file(Path(path), keep=settings.OPS_LOG_BACKUPS)
    return {"rotated": int(rotated), "kept": settings.OPS_LOG_BACKUPS}


# --- weekly ----------------------------------------------------------------------------------
def backup_and_verify(now: datetime) -> dict[str, Any]:
    try:
        services = import_module("backups.services")
    except ModuleNotFoundError:
        raise StepSkipped("the backups app has no services module") from None
    create = getattr(services, "create_backup", None)
    verify = getattr(services, "verify_backup", None)
    if not callable(create) or not callable(verify):
        raise StepSkipped("backups.services has no create_backup/verify_backup")
    backup = create(kind="full")
    if str(getattr(backup, "status", "")).lower() == "failed":
        raise RuntimeError(f"backup {backup.pk} failed: {getattr(backup, 'error', '')}")
    # verify_backup records a failure on the backup and returns it rather than raising,
    # so the step must read the outcome from the record.
    verified = verify(backup.id)
    if verified.verification_failed:
        raise RuntimeError(f"backup {backup.id} failed verification: {verified.verify_error}")
    return {"backup_id": backup.id, "verified": True}
