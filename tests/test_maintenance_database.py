"""Database upkeep: VACUUM (ANALYZE) on PostgreSQL, PRAGMA optimize on SQLite, statistics."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from maintenance import steps


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_vacuums_and_analyzes_our_tables_on_postgres() -> None:
    tables = steps.our_tables()
    assert "opsconsole_systemlog" in tables and "maintenance_maintenancerun" in tables
    counts = steps.optimize_database(timezone.now())
    assert counts["vacuumed"] == len(tables)
    assert "errors" not in counts
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT last_vacuum IS NOT NULL, last_analyze IS NOT NULL FROM pg_stat_user_tables "
            "WHERE relname = 'opsconsole_systemlog'"
        )
        assert cursor.fetchone() == (True, True)


@pytest.mark.postgres
@pytest.mark.django_db
def test_vacuum_inside_a_transaction_fails_clearly() -> None:
    with pytest.raises(RuntimeError, match="VACUUM needs autocommit"):
        steps.optimize_database(timezone.now())


@pytest.mark.postgres
@pytest.mark.django_db
def test_it_updates_statistics_on_postgres() -> None:
    counts = steps.update_statistics(timezone.now())
    assert counts["analyzed"] == len(steps.our_tables())


@pytest.mark.django_db
def test_it_runs_pragma_optimize_on_sqlite() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    assert steps.optimize_database(timezone.now()) == {"pragma_optimize": 1}
    assert steps.update_statistics(timezone.now()) == {"analyzed": 1}
