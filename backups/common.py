"""Small helpers shared by the backup services (kept apart to avoid import cycles)."""

from __future__ import annotations

import logging
from typing import Any

from django.db import connections

from backups.engines import postgres
from backups.errors import BackupError
from backups.models import Backup

logger = logging.getLogger("backups.services")


def database_engine(alias: str = "default") -> str:
    engine = connections[alias].settings_dict["ENGINE"]
    if engine.endswith("postgresql"):
        return "postgresql"
    if engine.endswith("sqlite3"):
        return "sqlite"
    raise BackupError(f"the database engine {engine} is not supported: use PostgreSQL or SQLite")


def pg_connection(dbname: str | None = None) -> postgres.Connection:
    return postgres.Connection(connections["default"].settings_dict, dbname=dbname)


def notify(signal: Any, **kwargs: Any) -> None:
    """Send a signal; a receiver that fails never aborts the backup or cleanup that sent it."""
    for receiver, result in signal.send_robust(sender=Backup, **kwargs):
        if isinstance(result, Exception):
            logger.error(
                "backups: receiver %s failed: %s",
                getattr(receiver, "__qualname__", receiver),
                type(result).__name__,
            )
