"""Disaster-recovery drill: lose the database and the files, recover from storage, time it.

1. A console database with a pgbench data set (DRILL_SCALE, default 70) and media files.
2. `manage.py backup` (full) as the nightly job would.
3. More writes after the backup: the data a real incident would lose.
4. The incident: the database is dropped and MEDIA_ROOT deleted.
5. Recovery on the same server, as docs/RUNBOOK.md says: `listbackups --storage`,
   `restore latest --yes`, `restore latest --files-only --yes`, `migrate --check`.

RTO = incident -> recovered and checked. RPO = incident - the backup's snapshot time, and
the rows written after the snapshot are counted as lost. Not part of `make bench` (it
destroys its own database on purpose); run `python bench/drill_backups.py`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from bench_backups import ROOT, create, drop, parts, pg_env

SCALE = int(os.environ.get("DRILL_SCALE", "70"))
NAME = "ops_drill_backups"


def run(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[1:])} failed: {done.stderr.strip()[-500:]}")
    return time.perf_counter() - start, done.stdout


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="drill-backups-"))
    media = work / "media"
    try:
        drop(NAME)
        create(NAME)
        subprocess.run(
            ["pgbench", "-i", "-q", "-s", str(SCALE), NAME],
            env=pg_env(),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(200):
            path = media / f"uploads/{i % 10}/file{i}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(os.urandom(50_000))
        p = parts()
        auth = f"{p['user']}:{p['password']}@" if p["password"] else f"{p['user']}@"
        env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="opsconsole.settings",
            DATABASE_URL=f"postgres://{auth}{p['host']}:{p['port']}/{NAME}",
            OPS_ENVIRONMENT="development",
            OPS_VAR_DIR=str(work / "var"),
            BACKUP_STORAGE_URL=f"file://{work / 'store'}",
            MEDIA_ROOT=str(media),
            LOG_LEVEL="WARNING",
        )
        manage = [sys.executable, "manage.py"]
        run([*manage, "migrate", "-v0"], env)
        backup_seconds, out = run([*manage, "backup", "--json"], env)
        backup = json.loads(out)
        snapshot = datetime.fromisoformat(backup["started_at"])
        with psycopg.connect(
            host=p["host"],
            port=p["port"],
            user=p["user"],
            password=p["password"] or None,
            dbname=NAME,
            autocommit=True,
        ) as conn:
            conn.execute(
                "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
                "SELECT 1, 1, g, 1, now() FROM generate_series(1, 1000) g"
            )
        time.sleep(1)

        incident = datetime.now(UTC)
        clock = time.perf_counter()
        drop(NAME)
        shutil.rmtree(media)
        steps = {}
        steps["listbackups --storage"], _ = run([*manage, "listbackups", "--storage"], env)
        steps["restore latest"], _ = run([*manage, "restore", "latest", "--yes"], env)
        steps["restore latest --files-only"], _ = run(
            [*manage, "restore", "latest", "--files-only", "--yes"], env
        )
        steps["migrate --check"], _ = run([*manage, "migrate", "--check"], env)
        rto = time.perf_counter() - clock

        with psycopg.connect(
            host=p["host"],
            port=p["port"],
            user=p["user"],
            password=p["password"] or None,
            dbname=NAME,
        ) as conn:
            accounts = conn.execute("SELECT count(*) FROM pgbench_accounts").fetchone()[0]
            history = conn.execute("SELECT count(*) FROM pgbench_history").fetchone()[0]
        files = sum(1 for f in media.rglob("*") if f.is_file())
        assert accounts == SCALE * 100_000, accounts
        assert files == 200, files
        print(
            f"drill at pgbench scale {SCALE}, backup {backup['size'] / 1e6:.1f} MB "
            f"(database + {files} files), backup took {backup['duration']:.1f} s"
        )
        for step, seconds in steps.items():
            print(f"  {step:<30} {seconds:6.1f} s")
        print(f"RTO (incident -> recovered, checked): {rto:.1f} s")
        print(
            f"RPO (incident - backup snapshot): {(incident - snapshot).total_seconds():.1f} s; "
            f"rows written after the snapshot and lost: {1000 - history}"
        )
        return 0
    finally:
        drop(NAME)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
