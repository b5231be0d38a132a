from django.db import migrations


def seed(apps, schema_editor):
    from errors.severity import DEFAULT_RULES

    SeverityRule = apps.get_model("errors", "SeverityRule")
    if not SeverityRule.objects.exists():
        SeverityRule.objects.bulk_create(
            SeverityRule(pattern=pattern, severity=severity, position=(i + 1) * 10)
            for i, (pattern, severity) in enumerate(DEFAULT_RULES)
        )


class Migration(migrations.Migration):
    dependencies = [("errors", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
