"""Private, breakable parts for tests/test_failing_parts.py, and a task the test worker runs.

Every part here is the test's own: a PostgreSQL cluster in a temporary directory on a free
port, a Redis server on a free port, and gunicorn / Celery worker / beat processes that use
them. Nothing touches the machine's shared PostgreSQL or Redis, so a test may stop and restart
them at will.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery import shared_task

from tests.servers import free_port

# Not imported from tests.conftest: the test worker imports this module, and conftest needs
# pytest and Django's auth models at import time.
ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path(os.environ.get("OPS_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


# --- a task for the test worker (loaded with `celery worker --include tests.failing_support`) ---
@shared_task(name="tests.failing_support.nap", ignore_result=True)
def nap(seconds: float, marker: str = "") -> None:
    """Sleep in the pool; record start and end (with the pool process id) in `marker`."""
    if marker:
        with open(marker, "a") as fh:
            fh.write(f"start {os.getpid()}\n")
    time.sleep(seconds)
    if marker:
        with open(marker, "a") as fh:
            fh.write(f"done {os.getpid()}\n")


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


# --- PostgreSQL -------------------------------------------------------------------------------
def _as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


class PrivatePostgres:
    """A throwaway cluster (trust auth, no fsync) this test may stop and start."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "pgdata"
        self.log = root / "postgres.log"
        self.port = free_port()

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        self.data.mkdir(mode=0o700)
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres", "postgres")
            self.log.touch()
            shutil.chown(self.log, "postgres", "postgres")
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "30",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=40,
        )

    def stop(self) -> None:
        subprocess.run(
            _as_postgres(
                [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]
            ),
            check=True,
            capture_output=True,
            timeout=40,
        )

    def sql(self, database: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        with (
            psycopg.connect(self.url(database), connect_timeout=3, autocommit=True) as conn,
            conn.cursor() as cursor,
        ):
            cursor.execute(query, params)
            return cursor.fetchall() if cursor.description else []


# --- Redis ------------------------------------------------------------------------------------
class PrivateRedis:
    """redis-server on a free port, without persistence: a restart starts empty."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.log = root / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
                + ["--save", "", "--appendonly", "no"],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_until(self.answers, 10, "redis-server to answer")

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


# --- our processes ----------------------------------------------------------------------------
@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def spawn(name: str, argv: list[str], env: dict[str, str], logdir: Path) -> Service:
    log = logdir / f"{name}.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", *argv],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Service(name, process, log)


def gunicorn_argv(port: int, workers: int = 2) -> list[str]:
    return [
        "gunicorn",
        "opsconsole.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--timeout",
        "30",
    ]


def worker_argv(hostname: str) -> list[str]:
    return [
        "celery",
        "-A",
        "opsconsole",
        "worker",
        "--pool=prefork",
        "--concurrency=1",
        "--loglevel=INFO",
        "--include=tests.failing_support",
        "-Q",
        "celery,ingest",  # the Procfile's two workers (default and digest queues) in one
        "-n",
        hostname,
    ]  # otherwise as the Procfile runs them (mingle and gossip on)


def beat_argv(schedule: Path) -> list[str]:
    return ["celery", "-A", "opsconsole", "beat", "--loglevel=INFO", "-s", str(schedule)]


# --- HTTP -------------------------------------------------------------------------------------
@dataclass
class Answer:
    status: int
    body: bytes
    seconds: float
    content_type: str = ""

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    url: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> Answer:
    """One HTTP request; a connection failure is status 0 (never an exception)."""
    req = urllib.request.Request(url, data=data, headers=headers or {})  # noqa: S310
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310
            status, body, kind = (
                response.status,
                response.read(),
                response.headers.get("Content-Type", ""),
            )
    except urllib.error.HTTPError as exc:
        status, body, kind = exc.code, exc.read(), exc.headers.get("Content-Type", "")
    except OSError:
        status, body, kind = 0, b"", ""
    return Answer(status, body, time.perf_counter() - started, kind)


@dataclass
class LivePoller:
    """Polls /health/live every `interval` seconds in a thread, recording every answer."""

    base: str
    interval: float = 0.15
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.answers.append(request(f"{self.base}/health/live", timeout=5))
            self._stop.wait(self.interval)

    def stop(self) -> list[Answer]:
        self._stop.set()
        self._thread.join(timeout=10)
        return self.answers


@contextlib.contextmanager
def polling_live(base: str) -> Iterator[LivePoller]:
    poller = LivePoller(base)
    try:
        yield poller
    finally:
        poller.stop()


def scratch_dir() -> Path:
    """A temporary directory the postgres user can enter (pytest's tmp_path is 0700 root)."""
    path = Path(tempfile.mkdtemp(prefix="ops-failing-"))
    path.chmod(0o755)
    return path
