"""Indexes for the issue list's filters: by release and environment (both databases), and on
PostgreSQL a GIN index on the events' tags (jsonb_path_ops) for `tags @> {"key": "value"}`.
SQLite has no GIN indexes; there the tag filter reads the events."""

from __future__ import annotations

from typing import Any

from django.db import migrations, models

GIN = "errors_report_tags_gin"


def create_gin(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {GIN} ON errors_errorreport USING gin (tags jsonb_path_ops)"
    )


def drop_gin(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {GIN}")


class Migration(migrations.Migration):
    dependencies = [
        ("errors", "0004_digest_quarantine_and_quotas"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="errorreport",
            index=models.Index(fields=["release", "issue"], name="errors_report_release"),
        ),
        migrations.AddIndex(
            model_name="errorreport",
            index=models.Index(fields=["environment", "issue"], name="errors_report_environment"),
        ),
        migrations.RunPython(create_gin, drop_gin),
    ]
