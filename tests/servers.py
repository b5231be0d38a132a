"""Real local servers for the tests and the benchmarks (bench/ imports this module too).

`start_gunicorn` starts a real gunicorn on a free loopback port, waits until it answers and
stops it, so neither writes its own Popen / poll / terminate loop; `SilentServer` is a
dependency that accepts connections and never answers. The module imports neither pytest nor
Django: the caller passes the environment (tests build it with `tests.conftest.subprocess_env`,
benchmarks with `bench.harness.app_env`).
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gunicorn_argv(
    port: int, *options: str, app: str = "opsconsole.wsgi:application", python: str = sys.executable
) -> list[str]:
    """`python -m gunicorn APP --bind 127.0.0.1:PORT OPTIONS...` as an argv list."""
    return [python, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}", *options]


def celery_worker_argv(hostname: str, queues: str, *options: str) -> list[str]:
    """`python -m celery -A opsconsole worker` named `hostname`, consuming `queues` (comma
    separated), logging at INFO, with `options` (pool, mingle, gossip, ...)."""
    return [
        *(sys.executable, "-m", "celery", "-A", "opsconsole", "worker", "--loglevel=INFO"),
        *("-n", hostname, "-Q", queues, *options),
    ]


@dataclass
class Gunicorn:
    """A running gunicorn: its master process, port, base URL and log file (or None)."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path | None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log else ""

    def __enter__(self) -> Gunicorn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (gunicorn's graceful stop), then SIGKILL if it outlives `timeout`."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _answers(port: int, path: str, wait: float) -> bool:
    """True once a request to `path` gets any HTTP answer within `wait` s (a worker serves)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=wait)
    try:
        conn.request("GET", path, headers={"Host": "127.0.0.1"})
        conn.getresponse().read()
    except OSError:
        return False
    finally:
        conn.close()
    return True


def wait_until_serving(server: Gunicorn, ready_path: str, timeout: float) -> None:
    """Poll `ready_path` until it answers; raise with the log's tail if gunicorn exits or hangs."""
    deadline = time.monotonic() + timeout
    # Each try waits up to 2 s (more for a slow start, e.g. under valgrind) for its answer.
    wait = max(2.0, timeout / 30)
    while not _answers(server.port, ready_path, wait):
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited {server.process.returncode}: {server.tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"gunicorn did not answer within {timeout:g} s: {server.tail()}")
        time.sleep(0.2)


def start_gunicorn(
    *options: str,
    env: Mapping[str, str],
    log: Path | None = None,
    app: str = "opsconsole.wsgi:application",
    prefix: Sequence[str] = (),
    ready_path: str = "/health/live",
    timeout: float = 30,
    preexec_fn: Callable[[], None] | None = None,
    python: str = sys.executable,
    cwd: Path = ROOT,
) -> Gunicorn:
    """Start gunicorn on a free port and return once `ready_path` answers.

    `with start_gunicorn(...) as server:` stops it on the way out; else call `server.stop()`.
    `options` are gunicorn's own (e.g. "--workers", "2"); `prefix` runs it through a wrapper
    (e.g. the Docker image's start script). Output goes to `log`, else nowhere; `timeout` bounds
    the wait for the first answer; `python` and `cwd` run another project (a host project in
    its own virtual environment) instead of the console's.
    """
    port = free_port()
    out: IO[bytes] | int = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    try:
        process = subprocess.Popen(
            [*prefix, *gunicorn_argv(port, *options, app=app, python=python)],
            cwd=cwd,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec_fn,  # noqa: PLW1509 (benchmarks pin gunicorn to one core)
        )
    finally:
        if not isinstance(out, int):
            out.close()
    server = Gunicorn(process, port, log)
    try:
        wait_until_serving(server, ready_path, timeout)
    except BaseException:
        server.stop()
        raise
    return server


class SilentServer:
    """Accepts TCP connections and never answers: a hung dependency."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.clients: list[socket.socket] = []
        self._stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.clients.append(conn)

    def close(self) -> None:
        self._stop = True
        for conn in self.clients:
            conn.close()
        self.sock.close()
