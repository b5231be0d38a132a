"""Error ingest benchmark: realistic sentry-sdk envelopes against gunicorn on loopback.

Measures, in one run:
  1. accepted events/s at saturation (16 concurrent keep-alive connections) and latency;
  2. p50/p99 accept latency at a paced 500 events/s (the target load);
  3. grouped + stored events/s: digest workers draining the backlog the burst left;
  4. memory (RSS of gunicorn master + workers, then of the digest workers) through the burst.
The anchor is Bugsink's published 30 events/s on 2 vCPU (bugsink.com/scalable-and-reliable);
ratios against it are printed. Bugsink itself is not run here (it is not installed), so the
anchor is its published figure, not a same-run measurement.

Environment: DATABASE_URL (PostgreSQL: a scratch database `<name>_bench` is created and
dropped; otherwise a temporary SQLite file), REDIS_URL (optional: the rate-limit cache),
BENCH_ERRORS_EVENTS (saturation burst size, default 15000), BENCH_ERRORS_PACED_SECONDS (10).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import (  # noqa: E402
    BENCH,
    ROOT,
    MemorySampler,
    ScratchDatabase,
    app_env,
    cpu_seconds,
    error_project,
    manage,
    percentile_ms,
    scratch_database,
    start_gunicorn,
)

BUGSINK_EVENTS_PER_SECOND = 30.0
EVENTS = int(os.environ.get("BENCH_ERRORS_EVENTS", "15000"))
PACED_SECONDS = int(os.environ.get("BENCH_ERRORS_PACED_SECONDS", "10"))
PACED_RATE = 500
CONCURRENCY = int(os.environ.get("BENCH_ERRORS_CONNECTIONS", "16"))
WORKER_CLASS = os.environ.get("BENCH_ERRORS_WORKER_CLASS", "gthread")
THREADS = int(os.environ.get("BENCH_ERRORS_THREADS", "8"))
ISSUE_KINDS = 40


def _words(seed: str, n: int) -> list[str]:
    out = []
    for i in range(n):
        h = hashlib.sha256(f"{seed}:{i}".encode()).hexdigest()
        out.append(h[: 4 + int(h[0], 16) % 9])
    return out


def make_event(n: int) -> dict:
    """A sentry-sdk-shaped Django error event (frames with context and vars, breadcrumbs,
    request, contexts, modules): about 10 KB gzip-compressed."""
    kind = n % ISSUE_KINDS
    modules = {w: f"{len(w)}.{n % 7}.{i}" for i, w in enumerate(_words("modules", 120))}
    return {
        "event_id": uuid.uuid4().hex,
        "timestamp": time.time(),
        "platform": "python",
        "level": "error",
        "logger": "django.request",
        "server_name": "web-1",
        "release": "shop@4.2.0",
        "environment": "production",
        "transaction": f"/checkout/{kind}/",
        "exception": {
            "values": [
                {
                    "type": f"Checkout{kind}Error",
                    "value": f"order {n} could not be charged (attempt {n % 5})",
                    "module": "shop.errors",
                    "mechanism": {"type": "django", "handled": False},
                    "stacktrace": {"frames": [_frame(kind, f, n) for f in range(22)]},
                }
            ]
        },
        "breadcrumbs": {"values": [_breadcrumb(n, i) for i in range(30)]},
        "request": _request(kind, n),
        "contexts": {
            "runtime": {"name": "CPython", "version": "3.11.9"},
            "os": {"name": "Linux", "version": "6.1.0"},
            "trace": {"trace_id": uuid.uuid4().hex, "span_id": uuid.uuid4().hex[:16]},
        },
        "tags": {"team": "payments", "region": "eu-west-1"},
        "modules": modules,
        "sdk": {"name": "sentry.python.django", "version": "2.75.0"},
    }


def _frame(kind: int, f: int, n: int) -> dict:
    """Stack frame `f` of the issue `kind` (the same for every event of it), with event `n`'s
    local variables."""
    w = _words(f"{kind}:{f}", 12)
    return {
        "filename": f"shop/{w[0]}/{w[1]}.py",
        "abs_path": f"/srv/app/shop/{w[0]}/{w[1]}.py",
        "module": f"shop.{w[0]}.{w[1]}",
        "function": f"{w[2]}_{w[3]}",
        "lineno": 10 + f * 7,
        "pre_context": [
            "    {} = {}({}, {})".format(*_words(f"{kind}:{f}:pre:{j}", 3), j) for j in range(5)
        ],
        "context_line": f"    return {w[7]}.{w[8]}({w[9]})",
        "post_context": [
            "    # {} {} {}".format(*_words(f"{kind}:{f}:post:{j}", 3)) for j in range(5)
        ],
        "in_app": f > 12,
        "vars": {
            w[4]: f"'{_words(str(n), 1)[0]}-{n}'",
            w[5]: str(n * f),
            "self": f"<shop.{w[0]}.{w[1]}.Handler object at 0x{n:08x}>",
            "request": "<WSGIRequest: POST '/checkout/'>",
        },
    }


def _breadcrumb(n: int, i: int) -> dict:
    return {
        "timestamp": 1764150000 + i,
        "category": "query",
        "message": "SELECT {} FROM shop_{} WHERE {} = {}".format(  # noqa: S608 - sample text
            ", ".join(_words(f"{n}:{i}:cols", 4)), *_words(f"{n}:{i}", 2), n + i
        ),
        "level": "info",
        "type": "default",
    }


def _request(kind: int, n: int) -> dict:
    return {
        "url": f"https://shop.example.com/checkout/{kind}/",
        "method": "POST",
        "query_string": f"step=pay&order={n}",
        "headers": {
            "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/133.0",
            "Cookie": f"sessionid={uuid.uuid4().hex}",
            "Accept-Language": "en-GB,en;q=0.8",
        },
        "data": {"card": "4111 1111 1111 1111", "amount": str(n % 1000)},
    }


def envelope(n: int) -> bytes:
    event = make_event(n)
    payload = json.dumps(event).encode()
    header = json.dumps({"event_id": event["event_id"], "sent_at": "2026-11-26T10:00:00Z"})
    item = json.dumps({"type": "event", "length": len(payload), "content_type": "application/json"})
    return gzip.compress(b"\n".join([header.encode(), item.encode(), payload]), compresslevel=9)


# --- load ------------------------------------------------------------------------------------
def _send_worker(args: tuple[int, str, str, list[bytes], float, int]) -> list[float]:
    """One client process: threads on keep-alive connections, latencies in seconds."""
    port, path, auth, bodies, rate, threads = args
    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = [bodies[i::threads] for i in range(threads)]
    start = time.perf_counter()

    def run(chunk: list[bytes], offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for i, body in enumerate(chunk):
            if rate:
                due = start + (i * threads + offset) / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            t0 = time.perf_counter()
            conn.request(
                "POST",
                path,
                body=body,
                headers={
                    "Content-Type": "application/x-sentry-envelope",
                    "Content-Encoding": "gzip",
                    "X-Sentry-Auth": auth,
                },
            )
            response = conn.getresponse()
            response.read()
            elapsed = time.perf_counter() - t0
            if response.status != 200:
                raise SystemExit(f"ingest answered {response.status}")
            with lock:
                latencies.append(elapsed)

    pool = [threading.Thread(target=run, args=(c, i)) for i, c in enumerate(per_thread)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return latencies


def send(
    port: int, path: str, auth: str, bodies: list[bytes], rate: float
) -> tuple[float, list[float]]:
    """Send `bodies` from 2 client processes; with `rate`, paced (events/s in total)."""
    procs = 2
    threads = CONCURRENCY // procs
    chunks = [bodies[i::procs] for i in range(procs)]
    t0 = time.perf_counter()
    with multiprocessing.Pool(procs) as pool:
        results = pool.map(
            _send_worker, [(port, path, auth, c, rate / procs, threads) for c in chunks]
        )
    wall = time.perf_counter() - t0
    return wall, [lat for r in results for lat in r]


class PostgresCpu(threading.Thread):
    """CPU seconds used by the PostgreSQL backends serving the bench database since start():
    sampled, because backends of closed connections disappear with their counters. Other
    databases' backends (other users of the server) and shared WAL/checkpoint work are not
    counted."""

    def __init__(self, database: str) -> None:
        super().__init__(daemon=True)
        self.database = database
        self.seen: dict[int, tuple[float, float]] = {}
        self.stop = threading.Event()
        self.first = True

    def _sample(self) -> None:
        for p in psutil.process_iter(["name", "cmdline"]):
            cmdline = " ".join(p.info["cmdline"] or [])
            if not cmdline.startswith("postgres:") or f" {self.database} " not in cmdline:
                continue
            try:
                t = p.cpu_times()
            except psutil.Error:
                continue
            used = t.user + t.system
            start = self.seen.get(p.pid, (used if self.first else 0.0, used))[0]
            self.seen[p.pid] = (start, used)
        self.first = False

    def run(self) -> None:
        while not self.stop.is_set():
            self._sample()
            time.sleep(0.2)

    def used(self) -> float:
        self._sample()
        return sum(last - first for first, last in self.seen.values())


def accept_phase(
    env: dict[str, str], db: ScratchDatabase, path: str, auth: str, bodies: list[bytes]
) -> tuple[float, MemorySampler]:
    """Parts 1, 2 and 4 (web side): the saturation burst, then the paced load, against
    gunicorn; returns the accepted events/s at saturation and the running memory sampler."""
    cpu = psutil.cpu_count()
    workers = int(os.environ.get("BENCH_ERRORS_WEB_WORKERS", "2"))
    sampler = MemorySampler()
    sampler.start()
    with start_gunicorn(
        "-w", str(workers), "-k", WORKER_CLASS, "--threads", str(THREADS),
        "--log-level", "warning", "--keep-alive", "30",
        app="opsconsole.wsgi", env=env, ready_path="/health/live",
    ) as server:  # fmt: skip
        port = server.port
        sampler.watch(server.process.pid)
        time.sleep(1)
        idle_rss = sampler.samples[-1] if sampler.samples else 0
        burst, paced = bodies[:EVENTS], bodies[EVENTS:]
        cpu0, pg = cpu_seconds(server.process.pid), PostgresCpu(db.name)
        pg.start()
        wall, lat = send(port, path, auth, burst, rate=0)
        web_ms = (cpu_seconds(server.process.pid) - cpu0) / len(burst) * 1000
        pg_ms = pg.used() / len(burst) * 1000
        pg.stop.set()
        accept_rate = len(burst) / wall
        print(
            f"saturation: {len(burst)} events in {wall:.1f}s = {accept_rate:.0f} events/s "
            f"accepted, p50 {percentile_ms(lat, 50):.1f} ms, p99 {percentile_ms(lat, 99):.1f} ms "
            f"({CONCURRENCY} connections, gunicorn {workers} {WORKER_CLASS} workers "
            f"x {THREADS} threads)"
        )
        print(
            f"server CPU per accepted event: gunicorn {web_ms:.2f} ms"
            + (f" + PostgreSQL {pg_ms:.2f} ms" if db.engine == "PostgreSQL" else " (SQLite: in it)")
            + f"; with {cpu} idle cores that is at most "
            f"{cpu * 1000 / (web_ms + pg_ms):.0f} events/s (derived, not measured)"
        )
        wall_p, lat_p = send(port, path, auth, paced, rate=PACED_RATE)
        print(
            f"paced {PACED_RATE}/s for {PACED_SECONDS}s: achieved {len(paced) / wall_p:.0f} "
            f"events/s, p50 {percentile_ms(lat_p, 50):.1f} ms, "
            f"p99 {percentile_ms(lat_p, 99):.1f} ms"
        )
        print(
            f"web memory through the {len(bodies)}-event burst: idle {idle_rss / 2**20:.0f} MiB, "
            f"peak {sampler.peak / 2**20:.0f} MiB (gunicorn master + {workers} workers)"
        )
    return accept_rate, sampler


def _digest_cpu(process: subprocess.Popen[str]) -> float:
    """The CPU seconds a digest worker reports when it is done (exit if it failed)."""
    out, _ = process.communicate()
    if process.returncode != 0:
        raise SystemExit("digest worker failed")
    return float(out.split()[-1])


def digest_phase(
    env: dict[str, str], db: ScratchDatabase, sampler: MemorySampler, total: int
) -> float:
    """Parts 3 and 4 (digest side): digest workers drain the inbox the load left; checks that
    every event was stored and returns the grouped + stored events/s."""
    cpu = psutil.cpu_count()
    digesters = 2 if db.engine == "PostgreSQL" else 1
    sampler.peak = 0
    sampler.samples = []
    t0, pg = time.perf_counter(), PostgresCpu(db.name)
    pg.start()
    procs = [
        subprocess.Popen(
            [sys.executable, str(BENCH / "errors_digest.py")],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(digesters)
    ]
    sampler.procs = [psutil.Process(p.pid) for p in procs]
    digest_cpu = sum(map(_digest_cpu, procs))
    digest_wall = time.perf_counter() - t0
    digest_pg = pg.used()
    pg.stop.set()
    sampler.stop.set()
    stored = manage(
        env,
        "shell",
        "-c",
        "from errors.models import ErrorReport, Issue, InboxEvent; "
        "print(ErrorReport.objects.count(), Issue.objects.count(), InboxEvent.objects.count())",
    ).split()[-3:]
    reports, issues, left = map(int, stored)
    digest_rate = reports / digest_wall
    print(
        f"digest: {reports} events grouped into {issues} issues and stored in "
        f"{digest_wall:.1f}s = {digest_rate:.0f} events/s ({digesters} worker process"
        f"{'es' if digesters > 1 else ''}, batches of 500), inbox left {left}; "
        f"digest memory peak {sampler.peak / 2**20:.0f} MiB"
    )
    per_event = (digest_cpu + digest_pg) / reports * 1000
    print(
        f"digest CPU per event: worker {digest_cpu / reports * 1000:.2f} ms"
        + (
            f" + PostgreSQL {digest_pg / reports * 1000:.2f} ms"
            if db.engine == "PostgreSQL"
            else " (SQLite: in it)"
        )
        + f"; with {cpu} idle cores that is at most "
        f"{cpu * 1000 / per_event:.0f} events/s (derived, not measured)"
    )
    if reports != total or left:
        raise SystemExit(f"lost events: sent {total}, stored {reports}, inbox {left}")
    return digest_rate


def main() -> int:
    with scratch_database("bench") as db:
        env = app_env(
            db.url,
            tempfile.mkdtemp(prefix="bench-errors-var-"),
            OPS_ERRORS_CAPTURE="1",  # as in production: our own sentry-sdk integration is on
            # The kick would enqueue Celery messages nobody consumes here; digest runs apart.
            CELERY_BROKER_URL="memory://",
        )
        cache = "Redis" if os.environ.get("REDIS_URL") else "DB"
        print(f"setting up ({db.engine}, cache {cache})")
        # Quotas that are counted on every event (their cost is measured) but never hit.
        path, auth = error_project(
            env, "bench", "rate_limit_per_minute=10**9, bytes_per_minute=2**50, bytes_per_day=2**50"
        )
        total = EVENTS + PACED_RATE * PACED_SECONDS
        t0 = time.perf_counter()
        with multiprocessing.Pool(2) as pool:
            bodies = pool.map(envelope, range(total), chunksize=200)
        print(
            f"built {total} envelopes in {time.perf_counter() - t0:.0f}s: "
            f"{statistics.mean(map(len, bodies)) / 1024:.1f} KiB gzip on average"
        )
        accept_rate, sampler = accept_phase(env, db, path, auth, bodies)
        digest_rate = digest_phase(env, db, sampler, total)
        print(
            f"vs Bugsink's published {BUGSINK_EVENTS_PER_SECOND:.0f} events/s on 2 vCPU: "
            f"accept x{accept_rate / BUGSINK_EVENTS_PER_SECOND:.1f}, "
            f"grouped+stored x{digest_rate / BUGSINK_EVENTS_PER_SECOND:.1f} "
            f"(this machine: {psutil.cpu_count()} CPUs, client and server sharing them)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
