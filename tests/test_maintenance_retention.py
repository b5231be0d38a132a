"""The retention cleanup (CleanUpOldData): exactly the old rows go, in bounded batches."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_results.models import TaskResult

from maintenance import services, steps
from maintenance.models import MaintenanceRun
from opsconsole.models import SystemLog

pytestmark = pytest.mark.django_db


def make_logs(count: int, age: timedelta, action: str) -> None:
    SystemLog.objects.bulk_create([SystemLog(action=action) for _ in range(count)])
    SystemLog.objects.filter(action=action).update(created_at=timezone.now() - age)


def delete_statements(queries: list[dict[str, str]], table: str) -> list[int]:
    """The row limit of each DELETE on `table` (DELETE ... WHERE pk IN (SELECT ... LIMIT n))."""
    sizes = []
    for query in queries:
        sql = query["sql"]
        if sql.startswith("DELETE") and table in sql:
            limit = re.search(r"LIMIT (\d+)", sql)
            assert limit, sql
            sizes.append(int(limit.group(1)))
    return sizes


def test_it_deletes_exactly_the_old_audit_rows_in_batches() -> None:
    make_logs(2_500, timedelta(days=91), "old")
    make_logs(40, timedelta(days=89), "recent")
    with CaptureQueriesContext(connection) as ctx:
        deleted = services.cleanup(batch_size=1_000)
    assert deleted["opsconsole.SystemLog"] == 2_500
    # three batches that delete rows, and one that finds none left
    assert delete_statements(ctx.captured_queries, "opsconsole_systemlog") == [1_000] * 4
    assert set(SystemLog.objects.values_list("action", flat=True)) == {"recent"}
    assert SystemLog.objects.count() == 40


def test_the_default_batch_is_at_most_10000_rows_per_statement() -> None:
    make_logs(10_050, timedelta(days=100), "old")
    with CaptureQueriesContext(connection) as ctx:
        services.cleanup()
    assert delete_statements(ctx.captured_queries, "opsconsole_systemlog") == [10_000] * 3


def test_it_keeps_celery_results_for_seven_days() -> None:
    now = timezone.now()
    for task_id, age in [("old-1", 8), ("old-2", 30), ("new-1", 6)]:
        TaskResult.objects.create(task_id=task_id, status="SUCCESS")
        TaskResult.objects.filter(task_id=task_id).update(date_done=now - timedelta(days=age))
    assert services.cleanup(now=now)["django_celery_results.TaskResult"] == 2
    assert list(TaskResult.objects.values_list("task_id", flat=True)) == ["new-1"]


def test_retention_periods_come_from_settings() -> None:
    make_logs(3, timedelta(days=20), "month-old")
    with override_settings(OPS_AUDIT_RETENTION_DAYS=14):
        assert services.cleanup()["opsconsole.SystemLog"] == 3


def test_old_run_records_go_too() -> None:
    now = timezone.now()
    MaintenanceRun.objects.create(
        run_id="00000000-0000-0000-0000-000000000001",
        kind="daily",
        step="x",
        started_at=now - timedelta(days=91),
    )
    MaintenanceRun.objects.create(
        run_id="00000000-0000-0000-0000-000000000002", kind="daily", step="x", started_at=now
    )
    assert services.cleanup(now=now)["maintenance.MaintenanceRun"] == 1


def test_the_job_calls_cleanup_of_every_app_that_has_one() -> None:
    found = steps.cleanup_functions()
    assert found["maintenance"] is services.cleanup
    make_logs(5, timedelta(days=120), "old")
    counts = steps.retention_cleanup(timezone.now())
    assert counts["deleted"]["maintenance"]["opsconsole.SystemLog"] == 5
    assert counts["total"] >= 5
    assert "errors" not in counts
