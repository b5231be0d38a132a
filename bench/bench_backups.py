"""Backup and restore speed against raw pg_dump / pg_restore, in the same run.

A pgbench database (scale BENCH_BACKUPS_SCALE, default 70, about 1 GB) is dumped with
`pg_dump -Fc` to a local file and with `manage.py backup --db-only` to a local storage
directory; then restored with `pg_restore` into a new database and with `manage.py restore
--target-db` (which also checks row counts and swaps the database in). The peak RSS of the
backup process (VmHWM) is read from /proc while it runs.

BENCH_BACKUPS_ROUNDS (default 2) rounds alternate which side goes first; the best time of
each side is compared. Targets (issue 3): backup <= 1.15x pg_dump, restore <= 1.15x
pg_restore, peak RSS <= 150 MB.
Needs a PostgreSQL server: DATABASE_URL if it is postgres://, else
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import ROOT, PostgresServer, app_env, manage, postgres_server  # noqa: E402

SCALE = int(os.environ.get("BENCH_BACKUPS_SCALE", "70"))
JOBS = int(os.environ.get("OPS_BACKUP_RESTORE_JOBS", "2"))
ROUNDS = int(os.environ.get("BENCH_BACKUPS_ROUNDS", "2"))
BACKUP_TARGET, RESTORE_TARGET, RSS_TARGET_MB = 1.15, 1.15, 150
NAME = "ops_bench_backups"
RAW_DB, OURS_DB = f"{NAME}_raw_restore", f"{NAME}_restored"


def server() -> PostgresServer:
    return postgres_server() or PostgresServer("postgres://postgres@127.0.0.1:5432/postgres")


def drop(pg: PostgresServer, *names: str) -> None:
    """Drop the databases and what a failed restore into them left (`<name>__...`)."""
    with pg.connect() as conn:
        for name in names:
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", [name + "\\_\\_%"]
            ).fetchall()
            for (leftover,) in rows:
                pg.drop(leftover)
    pg.drop(*names)


def pgbench_database(pg: PostgresServer, name: str, scale: int) -> None:
    """A new database `name` holding pgbench's tables at `scale` (100,000 accounts each)."""
    pg.create(name)
    subprocess.run(
        ["pgbench", "-i", "-q", "-s", str(scale), name],
        env=pg.client_env(),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


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


@dataclass
class Sides:
    """Both sides of the comparison on one database, and every time they took."""

    pg: PostgresServer
    env: dict[str, str]  # the console's environment (manage.py)
    raw_file: Path
    times: dict[str, list[float]] = field(default_factory=dict)  # step -> seconds per round
    rss_kb: list[int] = field(default_factory=list)
    backup: dict[str, Any] = field(default_factory=dict)  # our last backup, as --json says

    def note(self, step: str, seconds: float) -> None:
        self.times.setdefault(step, []).append(seconds)

    def raw_dump(self) -> None:
        args = ["pg_dump", "-Fc", "-f", str(self.raw_file), NAME]
        self.note("backup raw", timed(args, self.pg.client_env()))

    def our_backup(self) -> None:
        args = [sys.executable, "manage.py", "backup", "--db-only", "--json"]
        command, rss_kb, out = timed_with_rss(args, self.env)
        self.backup = json.loads(out)
        self.note("backup ours", self.backup["duration"])
        self.note("backup command", command)
        self.rss_kb.append(rss_kb)

    def raw_restore(self) -> None:
        drop(self.pg, RAW_DB)
        env = self.pg.client_env()
        seconds = timed(["createdb", "-T", "template0", RAW_DB], env)
        args = ["pg_restore", f"--jobs={JOBS}", "--exit-on-error", "--no-owner", "-d", RAW_DB]
        self.note("restore raw", seconds + timed([*args, str(self.raw_file)], env))

    def our_restore(self) -> None:
        drop(self.pg, OURS_DB)
        args = ["restore", str(self.backup["id"]), "--target-db", OURS_DB, "--yes", "--json"]
        command, _, out = timed_with_rss([sys.executable, "manage.py", *args], self.env)
        self.note("restore ours", json.loads(out)["seconds"])
        self.note("restore command", command)

    def run_rounds(self) -> None:
        """Rounds alternate who goes first, and the best of each is kept: the machine is shared
        and noisy, and neither side should profit from a warm cache the other paid for."""
        for round_no in range(ROUNDS):
            first_raw = round_no % 2 == 0
            backups = [self.raw_dump, self.our_backup]
            restores = [self.raw_restore, self.our_restore]
            for step in backups if first_raw else backups[::-1]:
                step()
            for step in restores if first_raw else restores[::-1]:
                step()


def prepare(pg: PostgresServer, work: Path) -> dict[str, str]:
    """The pgbench database, migrated for the console; the console's environment."""
    print(f"pgbench -i -s {SCALE} ...", flush=True)
    pgbench_database(pg, NAME, SCALE)
    env = app_env(
        pg.url_of(NAME),
        work / "var",
        BACKUP_STORAGE_URL=f"file://{work / 'store'}",
        MEDIA_ROOT=str(work / "media"),
        OPS_BACKUP_RESTORE_JOBS=str(JOBS),
    )
    env.pop("OPS_BACKUP_ENCRYPTION_KEY", None)
    manage(env, "migrate", "-v0")
    with pg.connect() as conn:
        size = conn.execute("SELECT pg_database_size(%s)", [NAME]).fetchone()[0]
    print(f"database {NAME}: {size / 1e9:.2f} GB (pgbench scale {SCALE})", flush=True)
    return env


def report(sides: Sides) -> bool:
    """Print every round and the best of each side against its target; whether all were met."""
    times = sides.times

    def fmt(step: str) -> str:
        return ", ".join(f"{v:.2f}" for v in times[step])

    print(f"rounds: {ROUNDS} (best of each kept)")
    for step in ("backup", "restore"):
        print(
            f"  {step:<7} raw: {fmt(f'{step} raw')}  ours: {fmt(f'{step} ours')}  "
            f"ours, command: {fmt(f'{step} command')}"
        )
    print(
        f"\narchive: raw pg_dump {sides.raw_file.stat().st_size / 1e6:.1f} MB, "
        f"ours {sides.backup['size'] / 1e6:.1f} MB"
    )
    print(
        f"{'step':<8} {'raw (s)':>9} {'ours (s)':>9} {'ratio':>7}  {'target':<12}"
        f" {'command (s)':>11} {'ratio':>7}"
    )
    ok = True
    # The ratio uses the service's own wall time (what a Celery worker spends); the command
    # line adds a constant interpreter + Django start-up, shown separately.
    for step, target in (("backup", BACKUP_TARGET), ("restore", RESTORE_TARGET)):
        raw, ours, command = (min(times[f"{step} {side}"]) for side in ("raw", "ours", "command"))
        ratio = ours / raw
        ok &= ratio <= target
        verdict = "ok" if ratio <= target else "MISSED"
        print(
            f"{step:<8} {raw:9.2f} {ours:9.2f} {ratio:7.3f}  <= {target} {verdict:<6}"
            f" {command:11.2f} {command / raw:7.3f}"
        )
    rss_mb = max(sides.rss_kb) / 1024
    ok &= rss_mb <= RSS_TARGET_MB
    print(
        f"peak RSS of the backup process: {rss_mb:.1f} MB (<= {RSS_TARGET_MB} MB "
        f"{'ok' if rss_mb <= RSS_TARGET_MB else 'MISSED'})"
    )
    print(f"restore jobs: {JOBS} (same for pg_restore and ours)")
    return ok


def main() -> int:
    pg = server()
    work = Path(tempfile.mkdtemp(prefix="bench-backups-"))
    try:
        drop(pg, NAME, RAW_DB, OURS_DB)
        sides = Sides(pg, prepare(pg, work), work / "raw.dump")
        sides.run_rounds()
        return 0 if report(sides) else 1
    finally:
        drop(pg, NAME, RAW_DB, OURS_DB)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
