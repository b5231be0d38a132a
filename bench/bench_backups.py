"""Backup and restore speed against raw pg_dump / pg_restore, in the same run.

A pgbench database (scale BENCH_BACKUPS_SCALE, default 70, about 1 GB) is dumped with
`pg_dump -Fc` to a local file and with `manage.py backup --db-only` to a local storage
directory; then restored with `pg_restore` into a new database and with `manage.py restore
--target-db` (which also checks row counts and swaps the database in). The peak RSS of the
backup process (VmHWM) is read from /proc while it runs.

BENCH_BACKUPS_ROUNDS (default 2) rounds alternate which side goes first; the best time of
each side is compared. Targets (issue 3): backup <= 1.15x pg_dump, restore <= 1.15x
pg_restore, peak RSS <= 150 MB.
Needs a PostgreSQL server: BENCH_DATABASE_URL, else DATABASE_URL if it is postgres://, else
postgres://postgres@127.0.0.1:5432. Set BENCH_BACKUPS_SCALE=10 for a quick run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
SCALE = int(os.environ.get("BENCH_BACKUPS_SCALE", "70"))
JOBS = int(os.environ.get("OPS_BACKUP_RESTORE_JOBS", "2"))
ROUNDS = int(os.environ.get("BENCH_BACKUPS_ROUNDS", "2"))
BACKUP_TARGET, RESTORE_TARGET, RSS_TARGET_MB = 1.15, 1.15, 150
NAME = "ops_bench_backups"


def server_url() -> str:
    url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        url = "postgres://postgres@127.0.0.1:5432/postgres"
    return url


def parts() -> dict[str, str]:
    u = urlsplit(server_url())
    return {
        "host": u.hostname or "127.0.0.1",
        "port": str(u.port or 5432),
        "user": u.username or "postgres",
        "password": u.password or "",
    }


def pg_env() -> dict[str, str]:
    p = parts()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGHOST=p["host"], PGPORT=p["port"], PGUSER=p["user"])
    if p["password"]:
        env["PGPASSWORD"] = p["password"]  # bench only; the console itself uses a PGPASSFILE
    return env


def admin() -> psycopg.Connection:
    p = parts()
    return psycopg.connect(
        host=p["host"],
        port=p["port"],
        user=p["user"],
        password=p["password"] or None,
        dbname="postgres",
        autocommit=True,
    )


def drop(*names: str) -> None:
    with admin() as conn:
        for name in names:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", [name + "\\_\\_%"]
            ).fetchall()
            for (leftover,) in rows:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(leftover)
                    )
                )


def create(name: str) -> None:
    with admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))


def timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def timed_with_rss(args: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Wall time, peak RSS (kB, VmHWM of the process itself) and stdout."""
    start = time.perf_counter()
    out = tempfile.TemporaryFile()  # noqa: SIM115  (read after the process ends)
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=out)
    peak = 0
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{args} exited with {proc.returncode}")
    out.seek(0)
    return elapsed, peak, out.read().decode()


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-backups-"))
    raw_db, ours_db = f"{NAME}_raw_restore", f"{NAME}_restored"
    try:
        drop(NAME, raw_db, ours_db)
        create(NAME)
        print(f"pgbench -i -s {SCALE} ...", flush=True)
        subprocess.run(
            ["pgbench", "-i", "-q", "-s", str(SCALE), NAME],
            env=pg_env(),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        p = parts()
        auth = f"{p['user']}:{p['password']}@" if p["password"] else f"{p['user']}@"
        url = f"postgres://{auth}{p['host']}:{p['port']}/{NAME}"
        env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="opsconsole.settings",
            DATABASE_URL=url,
            OPS_ENVIRONMENT="development",
            OPS_VAR_DIR=str(work / "var"),
            BACKUP_STORAGE_URL=f"file://{work / 'store'}",
            MEDIA_ROOT=str(work / "media"),
            OPS_BACKUP_RESTORE_JOBS=str(JOBS),
            LOG_LEVEL="WARNING",
        )
        env.pop("OPS_BACKUP_ENCRYPTION_KEY", None)
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "-v0"], env=env, cwd=ROOT, check=True)
        with admin() as conn:
            size = conn.execute("SELECT pg_database_size(%s)", [NAME]).fetchone()[0]
        print(f"database {NAME}: {size / 1e9:.2f} GB (pgbench scale {SCALE})", flush=True)

        raw_file = work / "raw.dump"

        def raw_dump() -> float:
            return timed(["pg_dump", "-Fc", "-f", str(raw_file), NAME], pg_env())

        def our_backup() -> tuple[float, float, int, dict]:
            command, rss_kb, out = timed_with_rss([*manage, "backup", "--db-only", "--json"], env)
            found = json.loads(out)
            return found["duration"], command, rss_kb, found

        def raw_restore() -> float:
            drop(raw_db)
            seconds = timed(["createdb", "-T", "template0", raw_db], pg_env())
            args = ["pg_restore", f"--jobs={JOBS}", "--exit-on-error", "--no-owner", "-d", raw_db]
            return seconds + timed([*args, str(raw_file)], pg_env())

        def our_restore(backup_id: int) -> tuple[float, float]:
            drop(ours_db)
            args = ["restore", str(backup_id), "--target-db", ours_db, "--yes", "--json"]
            command, _, out = timed_with_rss([*manage, *args], env)
            return json.loads(out)["seconds"], command

        # Rounds alternate who goes first, and the best of each is kept: the machine is shared
        # and noisy, and neither side should profit from a warm cache the other paid for.
        raws_b, ours_b, cmds_b, raws_r, ours_r, cmds_r, rss = [], [], [], [], [], [], []
        for round_no in range(ROUNDS):
            order = [0, 1] if round_no % 2 == 0 else [1, 0]
            for who in order:
                if who == 0:
                    raws_b.append(raw_dump())
                else:
                    seconds, command, rss_kb, backup = our_backup()
                    ours_b.append(seconds)
                    cmds_b.append(command)
                    rss.append(rss_kb)
            for who in order:
                if who == 0:
                    raws_r.append(raw_restore())
                else:
                    seconds, command = our_restore(backup["id"])
                    ours_r.append(seconds)
                    cmds_r.append(command)
        raw_backup, ours_backup = min(raws_b), min(cmds_b)
        raw_restore_s, ours_restore_cmd = min(raws_r), min(cmds_r)
        rss_kb = max(rss)

        def fmt(values: list[float]) -> str:
            return ", ".join(f"{v:.2f}" for v in values)

        print(f"rounds: {ROUNDS} (best of each kept)")
        print(f"  backup  raw: {fmt(raws_b)}  ours: {fmt(ours_b)}  ours, command: {fmt(cmds_b)}")
        print(f"  restore raw: {fmt(raws_r)}  ours: {fmt(ours_r)}  ours, command: {fmt(cmds_r)}")

        rss_mb = rss_kb / 1024
        # The ratio uses the service's own wall time (what a Celery worker spends); the
        # command line adds a constant interpreter + Django start-up, shown separately.
        rows = [
            ("backup", raw_backup, min(ours_b), ours_backup, BACKUP_TARGET),
            ("restore", raw_restore_s, min(ours_r), ours_restore_cmd, RESTORE_TARGET),
        ]
        print(
            f"\narchive: raw pg_dump {raw_file.stat().st_size / 1e6:.1f} MB, "
            f"ours {backup['size'] / 1e6:.1f} MB"
        )
        print(
            f"{'step':<8} {'raw (s)':>9} {'ours (s)':>9} {'ratio':>7}  {'target':<12}"
            f" {'command (s)':>11} {'ratio':>7}"
        )
        ok = True
        for step, raw, ours, command, target in rows:
            ratio = ours / raw
            ok &= ratio <= target
            verdict = "ok" if ratio <= target else "MISSED"
            print(
                f"{step:<8} {raw:9.2f} {ours:9.2f} {ratio:7.3f}  <= {target} {verdict:<6}"
                f" {command:11.2f} {command / raw:7.3f}"
            )
        ok &= rss_mb <= RSS_TARGET_MB
        print(
            f"peak RSS of the backup process: {rss_mb:.1f} MB (<= {RSS_TARGET_MB} MB "
            f"{'ok' if rss_mb <= RSS_TARGET_MB else 'MISSED'})"
        )
        print(f"restore jobs: {JOBS} (same for pg_restore and ours)")
        return 0 if ok else 1
    finally:
        drop(NAME, raw_db, ours_db)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
