"""What the benchmarks share: the environment of the processes they start, the PostgreSQL
server and throwaway databases, gunicorn on a free port (the tests' helper), the CPU and
memory of the processes they measure, and the statistics they print.

Benchmarks run as scripts (`python bench/bench_x.py`); importing this module puts the project
root on sys.path first, so `from bench.harness import ...` is their first project import.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.servers import Gunicorn, free_port, start_gunicorn  # noqa: E402

__all__ = [
    "BENCH",
    "ROOT",
    "Gunicorn",
    "MemorySampler",
    "PostgresServer",
    "ScratchDatabase",
    "app_env",
    "cpu_seconds",
    "error_project",
    "free_port",
    "manage",
    "median_ms",
    "percentile_ms",
    "postgres_server",
    "scratch_database",
    "start_gunicorn",
    "timed_manage",
]


def app_env(database_url: str, var_dir: str | Path, **extra: str) -> dict[str, str]:
    """The environment of a console process started by a benchmark: production-shaped
    settings (DEBUG off, a development environment so no deploy checks refuse a loopback
    set-up), the given database, a private var/ and warnings-only logs; `extra` wins."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="opsconsole.settings",
        DATABASE_URL=database_url,
        OPS_ENVIRONMENT="development",
        DEBUG="0",
        SECRET_KEY="bench-" + "x" * 50,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
        OPS_VAR_DIR=str(var_dir),
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


@dataclass(frozen=True)
class PostgresServer:
    """The PostgreSQL server a benchmark makes its databases on: `url` names any database on
    it; the others are reached by name."""

    url: str

    def url_of(self, name: str) -> str:
        return urlunsplit(urlsplit(self.url)._replace(path="/" + name))

    def connect(self, name: str = "postgres", **kwargs: Any) -> Any:
        """A psycopg connection to database `name` (autocommit, as CREATE DATABASE needs)."""
        import psycopg

        return psycopg.connect(self.url_of(name), autocommit=True, **kwargs)

    def create(self, name: str) -> None:
        """A new, empty database `name`, replacing one of that name."""
        self.drop(name)
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')

    def drop(self, *names: str) -> None:
        with self.connect() as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def client_env(self) -> dict[str, str]:
        """os.environ with the server in PG* variables, for pg_dump, pgbench and the like."""
        parts = urlsplit(self.url)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(
            PGHOST=parts.hostname or "127.0.0.1",
            PGPORT=str(parts.port or 5432),
            PGUSER=parts.username or "postgres",
        )
        if parts.password:
            env["PGPASSWORD"] = parts.password  # bench only; the console itself uses a PGPASSFILE
        return env


def postgres_server() -> PostgresServer | None:
    """The server DATABASE_URL points at, if it is PostgreSQL."""
    url = os.environ.get("DATABASE_URL", "")
    return PostgresServer(url) if url.startswith(("postgres://", "postgresql://")) else None


@dataclass
class ScratchDatabase:
    """A database made for one benchmark run: its URL and whether it is PostgreSQL."""

    url: str
    engine: str  # "PostgreSQL" or "SQLite"

    @property
    def name(self) -> str:
        return urlsplit(self.url).path.lstrip("/")


@contextmanager
def scratch_database(suffix: str) -> Iterator[ScratchDatabase]:
    """A new, empty database, dropped afterwards.

    PostgreSQL when DATABASE_URL points at it (a database named after it plus `suffix`),
    else an SQLite file in a temporary directory.
    """
    server = postgres_server()
    if server is None:
        folder = tempfile.mkdtemp(prefix=f"bench-{suffix}-")
        try:
            yield ScratchDatabase(f"sqlite:///{folder}/bench.sqlite3", "SQLite")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    name = f"{urlsplit(server.url).path.lstrip('/') or 'ops'}_{suffix}"
    server.create(name)
    try:
        yield ScratchDatabase(server.url_of(name), "PostgreSQL")
    finally:
        server.drop(name)


def cpu_seconds(pid: int, children_only: bool = False) -> float:
    """User + system CPU time so far of a process and all its descendants (or only of its
    descendants); processes that are gone count nothing."""
    try:
        root = psutil.Process(pid)
        processes = root.children(recursive=True) + ([] if children_only else [root])
    except psutil.Error:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def percentile_ms(values: list[float], q: float) -> float:
    """The q-th percentile (1..99) of durations in seconds, in milliseconds."""
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000


def median_ms(values: list[float]) -> str:
    """`median X ms, p95 Y ms` for durations in seconds (nearest-rank p95; fine for few values)."""
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
    return f"median {statistics.median(values) * 1000:7.2f} ms, p95 {p95 * 1000:7.2f} ms"


def manage(env: dict[str, str], *args: str) -> str:
    """`manage.py ARGS` in a child process with `env`; its stdout, or exit with its stderr."""
    out = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if out.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed: {out.stderr[-2000:]}")
    return out.stdout


def timed_manage(env: dict[str, str], *args: str) -> tuple[float, str]:
    """`manage(env, *args)` and its wall time in seconds: (seconds, stdout)."""
    start = time.perf_counter()
    out = manage(env, *args)
    return time.perf_counter() - start, out


def error_project(env: dict[str, str], name: str, quotas: str) -> tuple[str, str]:
    """Migrate, create the error project `name` and set its quota fields (`quotas`, keyword
    arguments of a queryset update); returns (envelope path, X-Sentry-Auth header)."""
    manage(env, "migrate", "--noinput")
    created = json.loads(manage(env, "createerrorproject", name, "--json"))
    manage(
        env,
        "shell",
        "-c",
        "from errors.models import ErrorProject; "
        f"ErrorProject.objects.filter(name={name!r}).update({quotas})",
    )
    key = urlsplit(created["dsn"]).username
    auth = f"Sentry sentry_key={key}, sentry_version=7, sentry_client=sentry.python/2.75.0"
    return f"/api/{created['project_id']}/envelope/", auth


class MemorySampler(threading.Thread):
    """Samples the summed RSS of process trees (a root and its children) every 0.25 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.procs: list[psutil.Process] = []
        self.peak = 0
        self.samples: list[int] = []
        self.stop = threading.Event()

    def watch(self, pid: int) -> None:
        self.procs = [psutil.Process(pid)]

    def run(self) -> None:
        while not self.stop.is_set():
            total = 0
            for root in list(self.procs):
                try:
                    for p in [root, *root.children(recursive=True)]:
                        total += p.memory_info().rss
                except psutil.Error:
                    continue
            if total:
                self.samples.append(total)
                self.peak = max(self.peak, total)
            time.sleep(0.25)
