"""Sunday's backup is the weekly upkeep's (backup, then verification of that backup).

The separate weekly verification schedule ran at the same time as the weekly upkeep (Sunday
04:00), and the daily backup ran on Sundays too. Beat (opsconsole.scheduler) keeps an existing
schedule's timing, so the code's new timing alone would not reach a deployed database: remove
the weekly verification's row, move a daily backup still on the old every-day default to Monday
to Saturday, and a weekly upkeep still on its old default (Sunday 04:00) to the daily backup's
hour, so backups stay 24 h apart. Timings an operator changed in the admin are left alone.
"""

from typing import Any

from django.conf import settings
from django.db import migrations

WEEKLY_VERIFY = "backups-verify-weekly"
DAILY = "backups-daily"
WEEKLY_UPKEEP = "perform-weekly-maintenance"


def _retime(task: Any, crontab_model: Any, **changes: str) -> None:
    # Crontab rows are shared between tasks: point this one at a row of its own timing.
    old = task.crontab
    fields = {
        "minute": old.minute,
        "hour": old.hour,
        "day_of_week": old.day_of_week,
        "day_of_month": old.day_of_month,
        "month_of_year": old.month_of_year,
        "timezone": old.timezone,
        **changes,
    }
    task.crontab, _ = crontab_model.objects.get_or_create(**fields)
    task.save(update_fields=["crontab"])


def one_sunday_backup(apps: Any, schema_editor: Any) -> None:
    periodic_task = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab = apps.get_model("django_celery_beat", "CrontabSchedule")
    periodic_task.objects.filter(name=WEEKLY_VERIFY).delete()
    daily = periodic_task.objects.filter(name=DAILY, crontab__day_of_week="*").first()
    if daily is not None:
        _retime(daily, crontab, day_of_week="1-6")
    weekly = periodic_task.objects.filter(
        name=WEEKLY_UPKEEP,
        crontab__minute="0",
        crontab__hour="4",
        crontab__day_of_week__in=["sun", "0"],
    ).first()
    if weekly is not None:
        _retime(weekly, crontab, hour=str(settings.OPS_BACKUP_HOUR))


class Migration(migrations.Migration):
    dependencies = [
        ("backups", "0001_initial"),
        ("django_celery_beat", "0018_improve_crontab_helptext"),
    ]

    operations = [migrations.RunPython(one_sunday_backup, migrations.RunPython.noop)]
