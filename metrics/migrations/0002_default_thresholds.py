"""The seed's thresholds: CPU 90 %, memory 90 %, disk 90 %, load above the core count
(load_per_core > 1) and p95 response time 200 ms. Operators change them in the admin."""

from django.db import migrations

DEFAULTS = [
    # metric, warning, sustained minutes
    ("cpu_percent", 90.0, 5),
    ("memory_percent", 90.0, 5),
    ("disk_percent", 90.0, 0),
    ("load_per_core", 1.0, 5),
    ("response_time_p95_ms", 200.0, 5),
]


def seed(apps, schema_editor):
    Threshold = apps.get_model("metrics", "Threshold")
    for metric, warning, sustained in DEFAULTS:
        Threshold.objects.get_or_create(
            metric=metric,
            host="",
            defaults={"comparison": "gt", "warning": warning, "sustained_minutes": sustained},
        )


def unseed(apps, schema_editor):
    Threshold = apps.get_model("metrics", "Threshold")
    for metric, _warning, _sustained in DEFAULTS:
        Threshold.objects.filter(metric=metric, host="").delete()


class Migration(migrations.Migration):
    dependencies = [("metrics", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
