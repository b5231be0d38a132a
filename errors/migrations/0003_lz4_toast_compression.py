"""Compress the large columns with lz4 instead of PostgreSQL's default pglz.

Every accepted event's payload (10-100 KB of JSON) is TOASTed on insert. lz4 costs the server
a fraction of pglz's CPU per insert (about what storing it uncompressed costs), for a few more
bytes on disk: the figures are in docs/PERFORMANCE.md (Error ingest).
Needs PostgreSQL 14 or later built with lz4 (the packaged servers are); anywhere else,
including SQLite, this changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError, migrations, transaction

logger = logging.getLogger(__name__)

COLUMNS = [
    ("errors_inboxevent", "payload"),
    ("errors_errorreport", "frames"),
    ("errors_errorreport", "breadcrumbs"),
    ("errors_errorreport", "request"),
    ("errors_errorreport", "contexts"),
]


def _set(apps: Any, schema_editor: Any, method: str) -> None:
    connection = schema_editor.connection
    if connection.vendor != "postgresql" or connection.pg_version < 140000:
        return
    # Probe in a savepoint: SET fails on a server built without lz4; keep pglz there.
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as probe:
            probe.execute(f"SET LOCAL default_toast_compression = {method}")
    except DatabaseError:
        logger.warning("PostgreSQL has no %s compression; keeping pglz", method)
        return
    with connection.cursor() as cursor:
        for table, column in COLUMNS:
            cursor.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET COMPRESSION {method}')


def to_lz4(apps: Any, schema_editor: Any) -> None:
    _set(apps, schema_editor, "lz4")


def to_pglz(apps: Any, schema_editor: Any) -> None:
    _set(apps, schema_editor, "pglz")


class Migration(migrations.Migration):
    dependencies = [("errors", "0002_default_severity_rules")]

    operations = [migrations.RunPython(to_lz4, to_pglz, elidable=False)]
