"""Shared fixtures: a small cast of users, real services, and real helper servers.

Actors: `admin` (superuser), `operator` (staff with view permissions), `outsider` (no staff).
Real parts: `redis_url` (skips without REDIS_URL), the `postgres` marker (skips on SQLite),
`live_worker` (a real Celery worker process on the test database), `http_server` (a local
HTTP server whose handler the test writes).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.db import connection

import opsconsole.celery  # noqa: F401  (the standalone's Celery app, as manage.py loads it)
from tests.servers import celery_worker_argv, free_port

ROOT = Path(__file__).resolve().parent.parent

# Every fixture module, registered once for the whole suite (tests import only their helpers).
pytest_plugins = [
    "tests.fixtures_alerts",
    "tests.fixtures_backups",
    "tests.fixtures_browser",
    "tests.fixtures_errors",
    "tests.fixtures_health",
    "tests.fixtures_maintenance",
    "tests.fixtures_metrics",
]


def _redis_reachable(url: str) -> bool:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5).ping()
    except Exception:
        return False
    return True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    redis_url = os.environ.get("REDIS_URL", "")
    redis_ok = bool(redis_url) and _redis_reachable(redis_url)
    chromium = Path("/usr/bin/chromium").exists()
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://...")
    skip_redis = pytest.mark.skip(
        reason="needs Redis: set REDIS_URL=redis://127.0.0.1:6379/0"
        if not redis_url
        else f"Redis at {redis_url} is not reachable"
    )
    skip_browser = pytest.mark.skip(reason="needs Chromium at /usr/bin/chromium")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not redis_ok:
            item.add_marker(skip_redis)
        if "browser" in item.keywords and not chromium:
            item.add_marker(skip_browser)


# --- actors ----------------------------------------------------------------------------------
@pytest.fixture
def admin(db: Any) -> User:
    return User.objects.create_superuser("alice", "alice@example.com", "alice-password")


@pytest.fixture
def operator(db: Any) -> User:
    user = User.objects.create_user("bob", "bob@example.com", "bob-password", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    return user


@pytest.fixture
def outsider(db: Any) -> User:
    return User.objects.create_user("charlie", "charlie@example.com", "charlie-password")


# --- real services ----------------------------------------------------------------------------
@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "")
    if not url or not _redis_reachable(url):
        pytest.skip("needs Redis: set REDIS_URL")
    return url


def database_url_for_subprocess() -> str:
    """A DATABASE_URL pointing at the database the test run is using (the test database)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    return f"postgres://{user}{password}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="opsconsole.settings_test",
        DATABASE_URL=database_url_for_subprocess(),
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def reset_celery_connections(app: Any) -> None:
    """Drop pooled broker connections so the next publish uses the current broker_url.

    kombu keeps one global pool per broker URL, shared with the app: reset the registry
    rather than closing a pool that a later test with the same URL would get back closed.
    """
    from kombu import pools

    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


def route_digest_to(app: Any, queue: str) -> None:
    """Send the error digest to `queue` from this process (routes are cached by Celery)."""
    app.conf.task_routes = {"errors.tasks.digest_inbox": {"queue": queue}}
    app.amqp.flush_routes()
    app.amqp.__dict__.pop("router", None)


def _worker_broker(tmp_path: Path) -> tuple[str, dict[str, Any], str]:
    """(broker URL, transport options, queue): Redis with a queue of this test's own when
    REDIS_URL answers, else the filesystem broker in tmp_path and the default queue."""
    redis_url = os.environ.get("REDIS_URL", "")
    if redis_url and _redis_reachable(redis_url):
        return redis_url, {}, f"test-{os.getpid()}-{free_port()}"
    folder = tmp_path / "broker"
    folder.mkdir()
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "processed_folder": str(folder),
        "control_folder": str(folder / "control"),
        "store_processed": False,
    }
    return "filesystem://", options, "celery"


def _start_worker(
    env: dict[str, str], hostname: str, queues: str, log: Path
) -> subprocess.Popen[bytes]:
    """`celery worker` (solo pool) consuming `queues`; returns once its log says it is ready."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            celery_worker_argv(
                hostname, queues, "--pool=solo", "--without-mingle", "--without-gossip"
            ),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited: {log.read_text()[-3000:]}")
        if b"ready." in log.read_bytes():
            return proc
        time.sleep(0.2)
    _stop_worker(proc)
    raise RuntimeError(f"worker did not start: {log.read_text()[-3000:]}")


def _stop_worker(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def live_worker(transactional_db: Any, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A real Celery worker process on the test database.

    It uses Redis as the broker when REDIS_URL is set, else the filesystem broker in tmp_path.
    The test's process publishes to the same broker (settings are overridden for the test).
    Yields {"broker_url": ..., "process": Popen, "hostname": ...}.
    """
    if (
        connection.settings_dict["ENGINE"].endswith("sqlite3")
        and ":memory:" in str(connection.settings_dict["NAME"])
        or connection.settings_dict["NAME"].startswith("file:memorydb")
    ):
        pytest.skip("a worker process cannot share an in-memory SQLite database")
    from opsconsole.celery import app

    hostname = f"testworker-{os.getpid()}-{free_port()}@localhost"
    broker, options, queue = _worker_broker(tmp_path)
    # The worker also consumes the digest's own queue (settings.OPS_ERRORS_DIGEST_QUEUE).
    ingest_queue = f"{queue}-ingest"
    old = (app.conf.broker_url, app.conf.broker_transport_options, app.conf.task_default_queue)
    old_routes = app.conf.task_routes
    app.conf.update(broker_url=broker, broker_transport_options=options, task_default_queue=queue)
    route_digest_to(app, ingest_queue)
    reset_celery_connections(app)
    env = subprocess_env(
        CELERY_BROKER_URL=broker,
        OPS_TEST_BROKER_OPTIONS=json.dumps(options),
        OPS_TEST_DEFAULT_QUEUE=queue,
        OPS_ERRORS_DIGEST_QUEUE=ingest_queue,
    )
    log = tmp_path / "worker.log"
    proc = None
    try:
        proc = _start_worker(env, hostname, f"{queue},{ingest_queue}", log)
        yield {
            "broker_url": broker,
            "process": proc,
            "hostname": hostname,
            "log": log,
            "queue": queue,
            "ingest_queue": ingest_queue,
        }
    finally:
        if proc is not None:
            _stop_worker(proc)
        app.conf.update(
            broker_url=old[0], broker_transport_options=old[1], task_default_queue=old[2]
        )
        route_digest_to(app, old_routes["errors.tasks.digest_inbox"]["queue"])
        reset_celery_connections(app)
        if broker.startswith("redis"):  # kicks left for this worker's digest queue
            import redis

            redis.Redis.from_url(broker, socket_timeout=2).delete(
                ingest_queue, f"_kombu.binding.{ingest_queue}"
            )


# --- a real local HTTP server --------------------------------------------------------------------
class _Server(ThreadingHTTPServer):
    daemon_threads = True


@pytest.fixture
def http_server() -> Iterator[Callable[[Callable[[BaseHTTPRequestHandler], None]], str]]:
    """Start a loopback HTTP server; `url = http_server(handle)` where handle(handler) answers."""
    servers: list[_Server] = []
    requests: list[dict[str, Any]] = []

    def start(handle: Callable[[BaseHTTPRequestHandler], None]) -> str:
        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.body = self.rfile.read(length) if length else b""
                requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": self.body,
                    }
                )
                handle(self)

            do_GET = do_POST = do_HEAD = do_PUT = _any  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    start.requests = requests  # type: ignore[attr-defined]
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
