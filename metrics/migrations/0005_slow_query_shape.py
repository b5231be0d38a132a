"""Slow queries carry their normalised SQL and its hash, filled when the row is written, so the
console groups them with one GROUP BY. Rows already stored are filled here, in batches."""

from __future__ import annotations

from typing import Any

from django.db import migrations, models

BATCH = 2000


def fill(apps: Any, schema_editor: Any) -> None:
    from metrics.sqlshape import fingerprint, normalize_sql

    SlowQuery = apps.get_model("metrics", "SlowQuery")
    last = 0
    while True:
        rows = list(SlowQuery.objects.filter(pk__gt=last).order_by("pk").only("pk", "sql")[:BATCH])
        if not rows:
            return
        for row in rows:
            row.normalized = normalize_sql(row.sql)
            row.fingerprint = fingerprint(row.normalized)
        SlowQuery.objects.bulk_update(rows, ["normalized", "fingerprint"])
        last = rows[-1].pk


class Migration(migrations.Migration):
    dependencies = [
        ("metrics", "0004_hosts"),
    ]

    operations = [
        migrations.AddField(
            model_name="slowquery",
            name="fingerprint",
            field=models.CharField(blank=True, default="", max_length=32),
        ),
        migrations.AddField(
            model_name="slowquery",
            name="normalized",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
