"""What the benchmarks share: the environment of the processes they start, a throwaway
database, gunicorn on a free port (the tests' helper) and the statistics they print.

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
    "ScratchDatabase",
    "app_env",
    "error_project",
    "free_port",
    "manage",
    "median_ms",
    "percentile_ms",
    "scratch_database",
    "start_gunicorn",
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

    PostgreSQL when DATABASE_URL points at it (a database named after it plus `suffix`, made
    through the server's `postgres` database), else an SQLite file in a temporary directory.
    """
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        folder = tempfile.mkdtemp(prefix=f"bench-{suffix}-")
        try:
            yield ScratchDatabase(f"sqlite:///{folder}/bench.sqlite3", "SQLite")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    import psycopg

    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'ops'}_{suffix}"
    server = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ScratchDatabase(urlunsplit(parts._replace(path="/" + name)), "PostgreSQL")
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
