"""Weekly archiving: rows older than OPS_ARCHIVE_AFTER get `is_archived`, in batches."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.db import connection, models
from django.test import override_settings
from django.utils import timezone

from maintenance import steps


@pytest.fixture
def archivable(transactional_db: Any) -> Iterator[type[models.Model]]:
    """A real table with an `is_archived` flag, like the ones other apps keep."""

    class ArchivableEvent(models.Model):
        created_at = models.DateTimeField()
        is_archived = models.BooleanField(default=False)

        class Meta:
            app_label = "maintenance"
            db_table = "test_maintenance_archivable_event"

        def __str__(self) -> str:
            return str(self.pk)

    with connection.schema_editor() as editor:
        editor.create_model(ArchivableEvent)
    try:
        yield ArchivableEvent
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(ArchivableEvent)
        del apps.all_models["maintenance"]["archivableevent"]
        apps.clear_cache()


def test_it_archives_exactly_the_old_rows(archivable: Any) -> None:
    now = timezone.now()
    archivable.objects.bulk_create(
        [archivable(created_at=now - timedelta(days=40)) for _ in range(25)]
        + [archivable(created_at=now - timedelta(days=10)) for _ in range(5)]
    )
    assert (archivable, "created_at") in steps.archivable_models()
    with override_settings(OPS_ARCHIVE_AFTER=timedelta(days=30)):
        counts = steps.archive_old_rows(now)
        assert counts["archived"]["maintenance.ArchivableEvent"] == 25
        assert steps.archive_old_rows(now)["archived"]["maintenance.ArchivableEvent"] == 0
    assert archivable.objects.filter(is_archived=True).count() == 25
    assert not archivable.objects.filter(
        is_archived=True, created_at__gt=now - timedelta(days=30)
    ).exists()
