"""Sunday's backup is the weekly upkeep's (backup, then verification of that backup).

The separate weekly verification schedule ran at the same time as the weekly upkeep, and the
daily backup ran on Sundays too. Beat (opsconsole.scheduler) keeps an existing schedule's
timing, so the code's new timing alone would not reach a deployed database: remove the weekly
verification's row, and move a daily backup still on the old every-day default to Monday to
Saturday. A daily backup an operator gave other days keeps them.
"""

from typing import Any

from django.db import migrations

WEEKLY_VERIFY = "backups-verify-weekly"
DAILY = "backups-daily"


def one_sunday_backup(apps: Any, schema_editor: Any) -> None:
    periodic_task = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab = apps.get_model("django_celery_beat", "CrontabSchedule")
    periodic_task.objects.filter(name=WEEKLY_VERIFY).delete()
    daily = periodic_task.objects.filter(name=DAILY, crontab__day_of_week="*").first()
    if daily is None:
        return
    old = daily.crontab
    # Crontab rows are shared between tasks: point this one at a Monday-Saturday row.
    weekdays, _ = crontab.objects.get_or_create(
        minute=old.minute,
        hour=old.hour,
        day_of_week="1-6",
        day_of_month=old.day_of_month,
        month_of_year=old.month_of_year,
        timezone=old.timezone,
    )
    daily.crontab = weekdays
    daily.save(update_fields=["crontab"])


class Migration(migrations.Migration):
    dependencies = [
        ("backups", "0001_initial"),
        ("django_celery_beat", "0018_improve_crontab_helptext"),
    ]

    operations = [migrations.RunPython(one_sunday_backup, migrations.RunPython.noop)]
