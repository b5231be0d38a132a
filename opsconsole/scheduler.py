"""Beat's scheduler: schedules declared in code, timing kept as the operator set it.

django-celery-beat writes every entry of CELERY_BEAT_SCHEDULE over its database row at each
beat start, so a schedule an operator retimed in the admin would silently return to the code's
timing at the next deploy. Here an entry that already exists keeps its timing (interval,
crontab, solar or clocked) and its enabled flag; the task, arguments and routing still follow
the code. To take a changed default timing from a new release, delete the entry in the admin:
beat recreates it from the code at its next start.
"""

from __future__ import annotations

from typing import Any

from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry

TIMING_FIELDS = ("interval", "crontab", "solar", "clocked")


class CodeDeclaredEntry(ModelEntry):
    @classmethod
    def from_entry(cls, name: str, app: Any = None, **entry: Any) -> CodeDeclaredEntry:
        fields = cls._unpack_fields(**entry)
        existing = PeriodicTask._default_manager.filter(name=name).first()
        if existing is None:
            task = PeriodicTask._default_manager.create(name=name, **fields)
        else:
            for field, value in fields.items():
                if field not in TIMING_FIELDS and field != "enabled":
                    setattr(existing, field, value)
            existing.save()
            task = existing
        return cls(task, app=app)


class OpsScheduler(DatabaseScheduler):
    Entry = CodeDeclaredEntry
