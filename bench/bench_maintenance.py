"""Retention cleanup of 1M old metric rows on PostgreSQL: batched deletes vs one DELETE.

Ops Console deletes with `opsconsole.retention.delete_in_batches` (at most 10,000 rows per
statement, one transaction each). The peer is the seed's CleanUpOldData, i.e. Laravel's
`Model::where('recorded_at', '<', $cutoff)->delete()`: one DELETE statement for everything.

For each, in the same run, on the same freshly loaded table (1,000,000 old rows + 100,000
recent ones, indexed on recorded_at), it measures:
- the longest time one DELETE statement held its row locks (statement start to commit);
- a concurrent reader (recent rows of the same table, every ~20 ms): max and p99 latency;
- a concurrent writer updating old rows that are being deleted (what a late metric upsert
  does): the longest it waited for a lock;
- total time.

Needs PostgreSQL (DATABASE_URL=postgres://...); it works in a scratch database
`<name>_bench` that it creates and drops. BENCH_ROWS changes the number of old rows.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import app_env, percentile_ms, scratch_database  # noqa: E402

OLD_ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
RECENT_ROWS = 100_000
TABLE = "bench_metric"
BATCH = 10_000


def load(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(
            f"CREATE TABLE {TABLE} (id bigserial PRIMARY KEY, name text NOT NULL, "
            "value double precision NOT NULL, recorded_at timestamptz NOT NULL)"
        )
        # Old rows: 8 to 38 days ago; recent rows: the last 6 days.
        conn.execute(
            f"INSERT INTO {TABLE} (name, value, recorded_at) "  # noqa: S608 - constant name
            "SELECT 'cpu.percent', g % 100, "
            "now() - interval '8 days' - (g % 2592000) * interval '1 second' "
            f"FROM generate_series(1, {OLD_ROWS}) g"
        )
        conn.execute(
            f"INSERT INTO {TABLE} (name, value, recorded_at) "  # noqa: S608 - constant name
            "SELECT 'cpu.percent', g % 100, now() - (g % 518400) * interval '1 second' "
            f"FROM generate_series(1, {RECENT_ROWS}) g"
        )
        conn.execute(f"CREATE INDEX {TABLE}_recorded_at ON {TABLE} (recorded_at)")
        conn.execute(f"VACUUM ANALYZE {TABLE}")


class Probe(threading.Thread):
    """Runs `work(cursor)` in a loop on its own connection, recording each latency."""

    def __init__(self, dsn: str, work: Any, pause: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.dsn, self.work, self.pause = dsn, work, pause
        self.latencies: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn, conn.cursor() as cursor:
            while not self.stop.is_set():
                began = time.perf_counter()
                self.work(cursor)
                self.latencies.append(time.perf_counter() - began)
                time.sleep(self.pause)


def read_recent(cursor: Any) -> None:
    cursor.execute(
        f"SELECT count(*), avg(value) FROM {TABLE} "  # noqa: S608 - constant table name
        "WHERE recorded_at > now() - interval '1 hour'"
    )
    cursor.fetchall()


def make_writer(max_old_id: int) -> Any:
    rng = random.Random(7)

    def touch_old(cursor: Any) -> None:
        cursor.execute(
            f"UPDATE {TABLE} SET value = value WHERE id = %s",  # noqa: S608 - constant name
            [rng.randint(1, max_old_id)],
        )

    return touch_old


def run_case(label: str, dsn: str, delete: Any) -> dict[str, float]:
    from django.db import connection

    load(dsn)
    connection.close()
    statements: list[float] = []
    lock_hold: list[float] = []
    key_selects: list[float] = []

    def timer(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        began = time.perf_counter()
        if sql.startswith("DELETE"):
            statements.append(began)
            return execute(sql, params, many, context)
        try:
            return execute(sql, params, many, context)
        finally:
            if sql.startswith("SELECT") and TABLE in sql:
                key_selects.append(time.perf_counter() - began)

    reader = Probe(dsn, read_recent)
    writer = Probe(dsn, make_writer(OLD_ROWS), pause=0.05)
    reader.start()
    writer.start()
    time.sleep(0.5)
    began = time.perf_counter()
    with connection.execute_wrapper(timer):
        deleted = delete(lambda: lock_hold.append(time.perf_counter() - statements[-1]))
    total = time.perf_counter() - began
    time.sleep(0.3)
    reader.stop.set()
    writer.stop.set()
    reader.join()
    writer.join()
    lat = reader.latencies
    result = {
        "deleted": float(deleted),
        "statements": float(len(statements)),
        "longest_lock_hold_s": max(lock_hold),
        "median_lock_hold_s": statistics.median(lock_hold),
        "key_select_total_s": sum(key_selects),
        "total_s": total,
        "reader_max_ms": max(lat) * 1000,
        "reader_p99_ms": percentile_ms(lat, 99),
        "reader_median_ms": statistics.median(lat) * 1000,
        "reader_queries": float(len(lat)),
        "writer_max_wait_ms": max(writer.latencies) * 1000,
    }
    print_case(label, result)
    return result


def print_case(label: str, result: dict[str, float]) -> None:
    print(
        f"{label:<42} deleted {int(result['deleted']):>9,} in "
        f"{int(result['statements']):>4} statement(s), {result['total_s']:6.1f} s total; "
        f"longest lock hold {result['longest_lock_hold_s']:6.3f} s "
        f"(median {result['median_lock_hold_s']:.3f} s); "
        f"selecting keys took {result['key_select_total_s']:.1f} s; "
        f"reader max {result['reader_max_ms']:7.1f} ms (p99 {result['reader_p99_ms']:6.1f}, "
        f"median {result['reader_median_ms']:5.1f}, {int(result['reader_queries'])} reads); "
        f"writer on old rows waited up to {result['writer_max_wait_ms']:7.1f} ms",
        flush=True,
    )


def bench_model() -> Any:
    """An unmanaged model over TABLE, for the ORM's deletes."""
    from django.db import models

    class BenchMetric(models.Model):
        name = models.TextField()
        value = models.FloatField()
        recorded_at = models.DateTimeField()

        class Meta:
            app_label = "maintenance"
            db_table = TABLE
            managed = False

        def __str__(self) -> str:
            return f"{self.name} {self.recorded_at}"

    return BenchMetric


def deleters(model: Any) -> dict[str, Callable[[Callable[[], None]], int]]:
    """The three ways to delete the old rows, by label; each calls `on_commit` after every
    transaction it commits and returns how many rows it deleted."""
    from django.db import connection, transaction
    from django.utils import timezone

    from opsconsole.retention import delete_in_batches

    def old_rows() -> Any:
        return model.objects.filter(recorded_at__lt=timezone.now() - timedelta(days=7))

    def batched(on_commit: Callable[[], None]) -> int:
        return delete_in_batches(old_rows(), progress=lambda n: on_commit())

    def single(on_commit: Callable[[], None]) -> int:
        with transaction.atomic():
            deleted, _ = old_rows().delete()
        on_commit()
        return int(deleted)

    def subselect(on_commit: Callable[[], None]) -> int:
        # One statement per batch that picks its own keys: no key list travels to Python.
        cutoff = timezone.now() - timedelta(days=7)
        sql = (
            f"DELETE FROM {TABLE} WHERE id IN (SELECT id FROM {TABLE} "  # noqa: S608
            f"WHERE recorded_at < %s ORDER BY recorded_at LIMIT {BATCH})"
        )
        total = 0
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, [cutoff])
                deleted = cursor.rowcount
            on_commit()
            total += deleted
            if deleted < BATCH:
                return total

    return {
        "ops console (batches of 10,000)": batched,
        "peer (one DELETE, as the seed)": single,
        "variant: DELETE ... IN (SELECT ... LIMIT)": subselect,
    }


def compare(ours: dict[str, float], peer: dict[str, float]) -> bool:
    """Print the peer's figures against ours; whether our longest lock hold is within budget."""
    print(
        "ratios (peer / ops console): longest lock hold "
        f"{peer['longest_lock_hold_s'] / ours['longest_lock_hold_s']:.0f}x, "
        f"writer max wait {peer['writer_max_wait_ms'] / ours['writer_max_wait_ms']:.1f}x, "
        f"reader max latency {peer['reader_max_ms'] / ours['reader_max_ms']:.2f}x, "
        f"total time {peer['total_s'] / ours['total_s']:.2f}x"
    )
    ok = ours["longest_lock_hold_s"] < 1.0
    print(
        f"longest single statement lock hold {ours['longest_lock_hold_s']:.3f} s "
        f"({'under' if ok else 'OVER'} the 1 s budget)"
    )
    return ok


def main() -> int:
    with scratch_database("bench") as db, tempfile.TemporaryDirectory() as var_dir:
        if db.engine != "PostgreSQL":
            print("bench_maintenance: needs PostgreSQL, set DATABASE_URL=postgres://...; not run")
            return 0
        os.environ.update(app_env(db.url, var_dir, OPS_DB_CONN_MAX_AGE="0"))
        import django

        django.setup()
        from django.db import connection

        params = connection.get_connection_params()
        dsn = " ".join(
            f"{k}={v}"
            for k, v in params.items()
            if k in {"dbname", "user", "host", "port", "password"}
        )
        print(
            f"PostgreSQL {connection.cursor().connection.info.server_version}; "
            f"{OLD_ROWS:,} old + {RECENT_ROWS:,} recent rows, deleting rows older than 7 days"
        )
        try:
            results = [
                run_case(label, dsn, delete) for label, delete in deleters(bench_model()).items()
            ]
        finally:
            connection.close()
    assert all(r["deleted"] == OLD_ROWS for r in results), results
    return 0 if compare(results[0], results[1]) else 1


if __name__ == "__main__":
    sys.exit(main())
