"""The console's own database as the backups app sees it: which engine, its name, a libpq
connection to it, and error text with its password taken out."""

from __future__ import annotations

from django.db import connections

from backups.engines import postgres
from backups.errors import BackupError


def database_engine(alias: str = "default") -> str:
    engine = connections[alias].settings_dict["ENGINE"]
    if engine.endswith("postgresql"):
        return "postgresql"
    if engine.endswith("sqlite3"):
        return "sqlite"
    raise BackupError(f"the database engine {engine} is not supported: use PostgreSQL or SQLite")


def live_db_name() -> str:
    return str(connections["default"].settings_dict["NAME"])


def pg_connection(dbname: str | None = None) -> postgres.Connection:
    return postgres.Connection(connections["default"].settings_dict, dbname=dbname)


def describe(exc: BaseException) -> str:
    """An exception's text for operators, with the database password (if any) masked."""
    text = str(exc) or type(exc).__name__
    password = connections["default"].settings_dict.get("PASSWORD")
    return text.replace(password, "***") if password else text
