"""Disaster-recovery drill: lose the database and the files, recover from storage, time it.

1. A console database with a pgbench data set (DRILL_SCALE, default 70) and media files.
2. `manage.py backup` (full) as the nightly job would.
3. More writes after the backup: the data a real incident would lose.
4. The incident: the database is dropped and MEDIA_ROOT deleted.
5. Recovery on the same server, as docs/RUNBOOK.md says: `listbackups --storage`,
   `restore latest --yes`, `restore latest --files-only --yes`, `migrate --check`.

RTO = incident -> recovered and checked. RPO = incident - the backup's snapshot time, and
the rows written after the snapshot are counted as lost. Not part of `make bench` (it
destroys its own database on purpose); run `python bench/drill_backups.py`. The PostgreSQL
server is bench_backups.py's.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_backups import drop, pgbench_database, server  # noqa: E402
from bench.harness import PostgresServer, app_env, manage, timed_manage  # noqa: E402

SCALE = int(os.environ.get("DRILL_SCALE", "70"))
NAME = "ops_drill_backups"
FILES = 200
ROWS_AFTER_BACKUP = 1000


def prepare(pg: PostgresServer, media: Path, var_dir: Path) -> dict[str, str]:
    """The console's database (pgbench data, migrated) and FILES media files; its
    environment."""
    pgbench_database(pg, NAME, SCALE)
    for i in range(FILES):
        path = media / f"uploads/{i % 10}/file{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(50_000))
    env = app_env(
        pg.url_of(NAME),
        var_dir,
        BACKUP_STORAGE_URL=f"file://{var_dir.parent / 'store'}",
        MEDIA_ROOT=str(media),
    )
    manage(env, "migrate", "-v0")
    return env


def recover(pg: PostgresServer, env: dict[str, str], media: Path) -> tuple[float, dict[str, float]]:
    """The incident and the recovery: (RTO in seconds, the seconds of each step)."""
    clock = time.perf_counter()
    drop(pg, NAME)
    shutil.rmtree(media)
    steps = {}
    for args in (
        ["listbackups", "--storage"],
        ["restore", "latest", "--yes"],
        ["restore", "latest", "--files-only", "--yes"],
        ["migrate", "--check"],
    ):
        steps[" ".join(args[:3]).removesuffix(" --yes")], _ = timed_manage(env, *args)
    return time.perf_counter() - clock, steps


def check(pg: PostgresServer, media: Path) -> int:
    """Assert the data set and the files are back; the rows written after the backup that
    were lost."""
    with pg.connect(NAME) as conn:
        accounts = conn.execute("SELECT count(*) FROM pgbench_accounts").fetchone()[0]
        history = conn.execute("SELECT count(*) FROM pgbench_history").fetchone()[0]
    files = sum(1 for f in media.rglob("*") if f.is_file())
    assert accounts == SCALE * 100_000, accounts
    assert files == FILES, files
    return int(ROWS_AFTER_BACKUP - history)


def main() -> int:
    pg = server()
    work = Path(tempfile.mkdtemp(prefix="drill-backups-"))
    media = work / "media"
    try:
        env = prepare(pg, media, work / "var")
        backup = json.loads(manage(env, "backup", "--json"))
        snapshot = datetime.fromisoformat(backup["started_at"])
        with pg.connect(NAME) as conn:
            conn.execute(
                "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
                "SELECT 1, 1, g, 1, now() FROM generate_series(1, %s) g",
                [ROWS_AFTER_BACKUP],
            )
        time.sleep(1)
        incident = datetime.now(UTC)
        rto, steps = recover(pg, env, media)
        lost = check(pg, media)
        print(
            f"drill at pgbench scale {SCALE}, backup {backup['size'] / 1e6:.1f} MB "
            f"(database + {FILES} files), backup took {backup['duration']:.1f} s"
        )
        for step, seconds in steps.items():
            print(f"  {step:<30} {seconds:6.1f} s")
        print(f"RTO (incident -> recovered, checked): {rto:.1f} s")
        print(
            f"RPO (incident - backup snapshot): {(incident - snapshot).total_seconds():.1f} s; "
            f"rows written after the snapshot and lost: {lost}"
        )
        return 0
    finally:
        drop(pg, NAME)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
