"""Metrics benchmark, everything in one run, peers side by side (figures: docs/PERFORMANCE.md).

1. Request middleware overhead under gunicorn on a trivial view: no metrics middleware vs ours
   vs django-prometheus's Before/After middleware (its documented set-up), interleaved rounds.
   Also the in-process cost per request (WSGI handler called directly), which is less noisy.
2. A /metrics scrape with 200 routes (ours, from the shared counters) vs prometheus-client's
   multiprocess mode reading per-pid files after 2 and after 50 worker lifetimes.
3. A 30-day chart of 20 series with 30 days of minute rows: ours (hourly rollups) vs
   aggregating the raw minute rows on the fly.

Uses a throw-away database (a new PostgreSQL database when DATABASE_URL points at PostgreSQL,
else a temporary SQLite file) and, when REDIS_URL is set, Redis keys under a prefix of its own.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from multiprocessing import Pool
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import (  # noqa: E402
    BENCH,
    ROOT,
    Gunicorn,
    ScratchDatabase,
    app_env,
    cpu_seconds,
    median_ms,
    scratch_database,
    start_gunicorn,
)

ROUTES = 200
SERIES = 20
DAYS = 30
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "9"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
CLIENTS = 2
# sync: one request per process at a time and a new connection per request (no threads, no
# keep-alive hand-offs); gthread: as `manage.py serve` runs it.
WORKER_CLASS = os.environ.get("BENCH_METRICS_WORKER", "sync")
PARTS = set(os.environ.get("BENCH_PARTS", "1,1b,2,3").split(","))


# --- set-up ---------------------------------------------------------------------------------
def prepare_environment(db: ScratchDatabase, var_dir: str) -> dict[str, str]:
    """The console's environment on the scratch database, for this process and gunicorn's."""
    env = app_env(
        db.url,
        var_dir,
        OPS_METRICS_KEY_PREFIX=f"bench:metrics:{uuid.uuid4().hex[:8]}",
        DJANGO_SETTINGS_MODULE="bench.metrics_settings",
    )
    os.environ.update(env)
    return env


def cleanup() -> None:
    """Delete this run's Redis keys and close the connections to the scratch database."""
    from django.conf import settings
    from django.db import connections

    if settings.REDIS_URL:
        from metrics.store import redis_client

        client = redis_client(settings.REDIS_URL)
        keys = list(client.scan_iter(match=f"{settings.OPS_METRICS_KEY_PREFIX}:*"))
        if keys:
            client.delete(*keys)
    connections.close_all()


# --- 1. middleware overhead ------------------------------------------------------------------
REQUEST = b"GET /trivial/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def _read_response(sock: socket.socket, buffer: bytes) -> bytes:
    """Read one keep-alive response (headers + Content-Length body); return what is left."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed")
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head[:200])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        rest += sock.recv(65536)
    return rest[length:]


CLOSE_REQUEST = b"GET /trivial/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def _client(args: tuple[int, float]) -> int:
    """Requests back to back until `until`: on one keep-alive connection (gthread), or a
    connection per request (sync workers close after each response)."""
    port, until = args
    done = 0
    if WORKER_CLASS == "sync":
        while time.monotonic() < until:
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(CLOSE_REQUEST)
                _read_response(s, b"")
            done += 1
        return done
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = b""
        while time.monotonic() < until:
            s.sendall(REQUEST)
            buffer = _read_response(s, buffer)
            done += 1
    return done


SERVER_CPU, CLIENT_CPU = 1, 0


def _pin(cpu: int) -> None:
    """Keep this process (and its children) on one core. With the server alone on its core
    and the load generator on the other, throughput is the server's cost per request rather
    than whatever the scheduler made of four busy processes on two cores."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {cpu})


def start_server(
    variant: str,
    env: dict[str, str],
    *options: str,
    worker_class: str = WORKER_CLASS,
    prefix: tuple[str, ...] = (),
    timeout: float = 30,
    pin: int | None = None,
    **extra_env: str,
) -> Gunicorn:
    """One gunicorn worker serving the console with the `variant` middleware set-up; `prefix`
    wraps it (valgrind), `pin` keeps it on one core."""
    return start_gunicorn(
        "--workers", "1", "--worker-class", worker_class, *options,
        env={**os.environ, **env, "BENCH_MIDDLEWARE": variant, **extra_env},
        prefix=prefix,
        ready_path="/trivial/",
        timeout=timeout,
        preexec_fn=None if pin is None else lambda: _pin(pin),
    )  # fmt: skip


def measure(pool: Any, server: Gunicorn, seconds: float) -> tuple[float, float]:
    """(requests/s, server CPU seconds per request) over one run."""
    proc, port = server.process, server.port
    cpu = cpu_seconds(proc.pid, children_only=True)  # gunicorn's workers
    until = time.monotonic() + seconds
    start = time.monotonic()
    done = sum(pool.map(_client, [(port, until)] * CLIENTS))
    elapsed = time.monotonic() - start
    return done / elapsed, (cpu_seconds(proc.pid, children_only=True) - cpu) / max(1, done)


def bench_gunicorn(env: dict[str, str]) -> dict[str, dict[str, float]]:
    """Interleaved rounds; each round measures every set-up once, and the loss is computed
    per round against that round's no-middleware figure (paired), then the median kept."""
    # "control" is a second no-middleware server: its "loss" is the noise floor of the method.
    variants = ["none", "control", "ops", "django_prometheus"]
    # gthread: two threads, so the worker always has the next request waiting.
    options = ("--threads", "2", "--keep-alive", "30") if WORKER_CLASS == "gthread" else ()
    servers = {v: start_server(v, env, *options, pin=SERVER_CPU) for v in variants}
    rps: dict[str, list[float]] = {v: [] for v in variants}
    cpu: dict[str, list[float]] = {v: [] for v in variants}
    try:
        with Pool(CLIENTS, initializer=_pin, initargs=(CLIENT_CPU,)) as pool:
            for v in variants:  # warm-up: imports, first-request work
                measure(pool, servers[v], 1.0)
            for r in range(ROUNDS):
                order = variants if r % 2 == 0 else variants[::-1]
                for v in order:
                    throughput, per_request = measure(pool, servers[v], SECONDS)
                    rps[v].append(throughput)
                    cpu[v].append(per_request)
    finally:
        for server in servers.values():
            server.stop()
    out: dict[str, dict[str, float]] = {}
    for v in variants:
        losses = [1 - a / b for a, b in zip(rps[v], rps["none"], strict=True)]
        extra = [a / b - 1 for a, b in zip(cpu[v], cpu["none"], strict=True)]
        out[v] = {
            "rps": statistics.median(rps[v]),
            "cpu": statistics.median(cpu[v]),
            "loss": statistics.median(losses),
            "loss_min": min(losses),
            "loss_max": max(losses),
            "extra_cpu": statistics.median(extra),
        }
    return out


def bench_in_process() -> dict[str, float]:
    """Seconds per request through the full WSGI handler for each middleware set-up: three
    handlers in one process, batches alternated, the fastest batch of each kept (other load
    only ever adds time; one process, so no difference of memory layout between set-ups)."""
    import json

    res = subprocess.run(
        [sys.executable, str(BENCH / "metrics_in_process.py")],
        cwd=ROOT,
        # django-prometheus's set-up installs its app; each handler picks its own stack.
        env={**os.environ, "BENCH_MIDDLEWARE": "django_prometheus"},
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    best: dict[str, float] = json.loads(res.stdout.strip().splitlines()[-1])
    return best


# --- 1b. instructions per request under callgrind ---------------------------------------------
CALLGRIND_REQUESTS = int(os.environ.get("BENCH_CALLGRIND_REQUESTS", "1000"))


def _get(port: int, path: str) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=600) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        _read_response(s, b"")


def _callgrind_run(variant: str, env: dict[str, str], lib: Path, out: Path) -> float:
    """Instructions per request of one sync gunicorn worker, counted by callgrind over
    CALLGRIND_REQUESTS requests after a warm-up (counters zeroed and dumped by requests)."""
    out.mkdir()
    server = start_server(
        variant,
        env,
        "--timeout",
        "900",
        worker_class="sync",
        prefix=(
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}/callgrind.%p",
            "--dump-instr=no",
            "-q",
        ),
        timeout=900,
        BENCH_CALLGRIND_LIB=str(lib),
        PYTHONHASHSEED="0",
        # The flush thread runs on a timer; under valgrind's ~30x slowdown it would run
        # ~30x as often per request as it does for real. Its cost is measured apart.
        OPS_METRICS_FLUSH_INTERVAL="0",
    )
    port = server.port
    try:
        for _ in range(100):
            _get(port, "/trivial/")
        _get(port, "/__callgrind/zero/")
        for _ in range(CALLGRIND_REQUESTS):
            _get(port, "/trivial/")
        _get(port, "/__callgrind/dump/")
    finally:
        server.stop(timeout=600)
    (dump,) = out.glob("callgrind.*.1")  # the worker's dump; the master never dumps early
    for line in dump.read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1]) / CALLGRIND_REQUESTS
    raise RuntimeError(f"no summary in {dump}")


def bench_instructions(env: dict[str, str]) -> None:
    """Part 1b: the throughput question answered without a clock. A sync worker is CPU-bound
    on this view, so its throughput is inversely proportional to the work per request; callgrind
    counts that work in instructions, the same on a busy or a quiet machine."""
    header = Path("/usr/include/valgrind/callgrind.h")
    if not (shutil.which("valgrind") and shutil.which("gcc") and header.exists()):
        print("\n[1b] instruction count: skipped (needs valgrind and gcc: apt install both)")
        return
    from concurrent.futures import ThreadPoolExecutor

    print(
        f"\n[1b] instructions per request under gunicorn (1 sync worker under callgrind,"
        f" {CALLGRIND_REQUESTS} requests after 100 warm-up, same view and stack as [1])",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="bench-callgrind-"))
    try:
        lib = work / "libopscallgrind.so"
        subprocess.run(
            ["gcc", "-O2", "-shared", "-fPIC", "-o", str(lib), str(BENCH / "callgrind_control.c")],
            check=True,
        )
        variants = ["none", "control", "ops", "django_prometheus"]
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            counts = dict(
                zip(
                    variants,
                    pool.map(lambda v: _callgrind_run(v, env, lib, work / v), variants),
                    strict=True,
                )
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = counts["none"]
    for v, label in (
        ("none", "no metrics middleware"),
        ("control", "no middleware, second server"),
        ("ops", "ops metrics middleware"),
        ("django_prometheus", "django-prometheus middleware"),
    ):
        extra = counts[v] - base
        print(
            f"  {label:30s} {counts[v] / 1e6:7.3f} M instructions/request"
            f" ({extra / 1e3:+7.1f} k, {extra / base * 100:+5.2f} %)"
        )
    ours = counts["ops"] / base - 1
    peer = counts["django_prometheus"] / base - 1
    floor = abs(counts["control"] / base - 1)
    print(
        f"  throughput loss implied (CPU-bound worker, 1 - base/with): ours"
        f" {(1 - base / counts['ops']) * 100:.2f} %, django-prometheus"
        f" {(1 - base / counts['django_prometheus']) * 100:.2f} %; noise floor {floor * 100:.2f} %"
    )
    flush = bench_flush_cost()
    worst = 1 - base / counts["ops"] + flush + floor
    print(
        f"  target <= 3 % loss: {'met' if worst <= 0.03 else 'MISSED'} (ours + flush thread +"
        f" noise floor = {worst * 100:.2f} %); less than django-prometheus:"
        f" {'yes' if ours < peer else 'NO'} ({peer / max(ours, 1e-9):.1f}x what ours adds)"
    )


def bench_flush_cost() -> float:
    """The flush thread's cost, which [1b] leaves out: CPU per flush with 50 active routes
    (their last 5 s of counters), against the flush interval."""
    from django.conf import settings
    from django.test.utils import override_settings

    from metrics.recorder import recorder

    routes, flushes, cpu = 50, 20, 0.0
    # Under a prefix of its own, so these routes do not join part 2's scrape.
    with override_settings(OPS_METRICS_KEY_PREFIX=f"{settings.OPS_METRICS_KEY_PREFIX}:flush"):
        # This process's own flush thread must not flush between recording and timing.
        recorder.record_request("bench/flush/", "GET", 200, 0.01, 0, 0.0, [])
        recorder.shutdown()
        for _ in range(flushes):
            now = time.time()
            for i in range(routes):
                for status in (200, 200, 200, 404):
                    recorder.record_request(
                        f"bench/flush/{i}/<int:pk>/",
                        "GET",
                        status,
                        0.012,
                        2,
                        0.003,
                        [0.002, 0.001],
                        now=now,
                    )
            c = time.process_time()
            assert recorder.flush()
            cpu += time.process_time() - c
    per_flush = cpu / flushes
    interval = float(settings.OPS_METRICS_FLUSH_INTERVAL) or 5.0
    print(
        f"  flush thread (left out above): {per_flush * 1000:.2f} ms CPU per flush of {routes}"
        f" active routes, every {interval:g} s = {per_flush / interval * 100:.3f} % of one core"
    )
    return per_flush / interval


# --- 2. /metrics scrape ----------------------------------------------------------------------
def bench_scrape() -> dict[str, list[float]]:
    from metrics.exposition import render
    from metrics.recorder import recorder

    now = time.time()
    for i in range(ROUTES):
        route = f"api/v1/resource{i}/<int:pk>/"
        # Three label sets per route: GET 2xx, POST 2xx and GET 4xx.
        for status, method, duration in (
            (200, "GET", 0.004 + i / 10000),
            (201, "POST", 0.02),
            (404, "GET", 0.002),
        ):
            recorder.record_request(
                route=route,
                method=method,
                status=status,
                duration=duration,
                query_count=3,
                query_time=0.002,
                query_durations=[0.001, 0.0005, 0.0005],
                now=now,
            )
    assert recorder.flush()
    body = render()
    lines = sum(1 for line in body.splitlines() if not line.startswith(b"#"))
    times, cpu = [], []
    for _ in range(30):
        t, c = time.perf_counter(), time.process_time()
        render()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    print(f"  ours: {lines} samples, {len(body) / 1024:.0f} KiB; {median_ms(times)}")
    print(f"    of which CPU time in this process: {median_ms(cpu)}")
    return {"ours": times}


def bench_multiprocess(lifetimes: int) -> list[float]:
    folder = Path(tempfile.mkdtemp(prefix="bench-prom-mp-"))
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    try:
        for _ in range(lifetimes):  # each process leaves its own per-pid files behind
            subprocess.run(
                [sys.executable, str(BENCH / "prometheus_mp_writer.py"), str(ROUTES)],
                env=env,
                check=True,
            )
        out = subprocess.run(
            [sys.executable, str(BENCH / "prometheus_mp_reader.py")],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        return [float(x) for x in out.stdout.split()]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- 3. 30-day chart -------------------------------------------------------------------------
def load_minutes(end: datetime) -> int:
    from django.db import connection

    from metrics.models import PerformanceMetric

    start = end - timedelta(days=DAYS)
    keys = [f"api/v1/resource{i}/<int:pk>/" for i in range(SERIES)]
    minutes = DAYS * 24 * 60
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            raw = cursor.connection
            with raw.cursor().copy(
                "COPY metrics_performancemetric (recorded_at, metric, key, host, value, samples)"
                " FROM STDIN"
            ) as copy:
                for m in range(minutes):
                    at = start + timedelta(minutes=m)
                    for s, key in enumerate(keys):
                        copy.write_row(
                            (at, "route_response_time_p95_ms", key, "", 20 + (m * 7 + s) % 90, 10)
                        )
        return minutes * SERIES
    batch: list[PerformanceMetric] = []
    for m in range(minutes):
        at = start + timedelta(minutes=m)
        for s, key in enumerate(keys):
            batch.append(
                PerformanceMetric(
                    recorded_at=at,
                    metric="route_response_time_p95_ms",
                    key=key,
                    value=20 + (m * 7 + s) % 90,
                    samples=10,
                )
            )
        if len(batch) >= 10000:
            PerformanceMetric.objects.bulk_create(batch)
            batch = []
    PerformanceMetric.objects.bulk_create(batch)
    return minutes * SERIES


CHART_METRIC = "route_response_time_p95_ms"


def bench_chart() -> dict[str, list[float]]:
    """A 30-day chart of SERIES routes: ours from the hourly rollups against an on-the-fly
    GROUP BY over the raw minute rows."""
    from django.db import connection

    end = datetime.now(tz=UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=DAYS)
    keys = [f"api/v1/resource{i}/<int:pk>/" for i in range(SERIES)]
    _chart_data(start, end)
    if connection.vendor == "postgresql":
        # Just written, before autovacuum has marked the pages all-visible: the index-only
        # scan still visits the heap. Then as autovacuum leaves it (PostgreSQL >= 13 vacuums
        # insert-only tables too), which is what a chart of older days reads.
        fresh, _, _ = _time_chart(keys, start, end)
        print(f"  ours, rollups not yet vacuumed: {median_ms(fresh)}")
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE metrics_metricrollup")
    ours, cpu, points = _time_chart(keys, start, end)
    raw, raw_points = _time_raw_chart(keys, start, end)
    print(f"  ours (hourly rollups, vacuumed): {points} points; {median_ms(ours)}")
    if connection.vendor == "postgresql":
        print(f"    PostgreSQL's own {_chart_plan(keys, start, end)[-1].strip()}")
    print(f"    of which CPU time in this process: {median_ms(cpu)}")
    print(f"  on-the-fly GROUP BY over raw rows: {raw_points} points; {median_ms(raw)}")
    return {"ours": ours, "raw": raw}


def _chart_data(start: datetime, end: datetime) -> None:
    """30 days of minute rows for SERIES routes, rolled up into hours, analysed."""
    from django.db import connection

    from metrics.rollups import roll_up_hours

    t = time.perf_counter()
    rows = load_minutes(end)
    print(f"  loaded {rows:,} minute rows in {time.perf_counter() - t:.1f} s", flush=True)
    t = time.perf_counter()
    roll_up_hours(start, end)
    print(f"  hourly rollup of 30 days took {time.perf_counter() - t:.1f} s", flush=True)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE metrics_performancemetric; ANALYZE metrics_metricrollup")


def _time_chart(
    keys: list[str], start: datetime, end: datetime, rounds: int = 15
) -> tuple[list[float], list[float], int]:
    """Our chart `rounds` times: (wall seconds, this process's CPU seconds, points)."""
    from metrics.rollups import chart

    wall, cpu = [], []
    for _ in range(rounds):
        t, c = time.perf_counter(), time.process_time()
        data = chart(CHART_METRIC, keys, start, end)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return wall, cpu, sum(len(v["t"]) for v in data.values())


def _time_raw_chart(
    keys: list[str], start: datetime, end: datetime, rounds: int = 3
) -> tuple[list[float], int]:
    """The peer's chart, hourly aggregates over the raw rows, `rounds` times: (seconds,
    points)."""
    from django.db.models import Avg, Max, Min
    from django.db.models.functions import TruncHour

    from metrics.models import PerformanceMetric

    wall = []
    for _ in range(rounds):
        t = time.perf_counter()
        result = list(
            PerformanceMetric.objects.filter(
                metric=CHART_METRIC, key__in=keys, recorded_at__gte=start, recorded_at__lt=end
            )
            .annotate(bucket=TruncHour("recorded_at", tzinfo=UTC))
            .values("key", "bucket")
            .annotate(avg=Avg("value"), lo=Min("value"), hi=Max("value"))
            .order_by("key", "bucket")
        )
        wall.append(time.perf_counter() - t)
    return wall, len(result)


def _chart_plan(keys: list[str], start: datetime, end: datetime) -> list[str]:
    """EXPLAIN ANALYZE of our chart's last query (PostgreSQL)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from metrics.rollups import chart

    with CaptureQueriesContext(connection) as captured:
        chart(CHART_METRIC, keys, start, end)
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE) " + captured.captured_queries[-1]["sql"])
        return [row[0] for row in cursor.fetchall()]


def bench_overhead(env: dict[str, str]) -> None:
    print(
        f"\n[1] middleware overhead, trivial view, gunicorn: 1 {WORKER_CLASS} worker pinned to"
        f" CPU {SERVER_CPU}, {CLIENTS} clients pinned to CPU {CLIENT_CPU};"
        f" {ROUNDS} interleaved rounds of {SECONDS:g} s (medians; loss paired per round)",
        flush=True,
    )
    results = bench_gunicorn(env)
    for v, label in (
        ("none", "no metrics middleware"),
        ("control", "no middleware, second server"),
        ("ops", "ops metrics middleware"),
        ("django_prometheus", "django-prometheus middleware"),
    ):
        r = results[v]
        print(
            f"  {label:30s} {r['rps']:7.0f} req/s ({r['loss'] * 100:+5.1f} % loss, rounds"
            f" {r['loss_min'] * 100:+.1f}..{r['loss_max'] * 100:+.1f});"
            f" server CPU {r['cpu'] * 1e6:6.0f} us/request ({r['extra_cpu'] * 100:+5.1f} %)"
        )
    ours, peer = results["ops"]["loss"], results["django_prometheus"]["loss"]
    floor = abs(results["control"]["loss"])
    print(
        f"  noise floor (two identical servers): {floor * 100:.1f} %;"
        f" target <= 3 % loss: {'met' if ours <= 0.03 else 'MISSED'}"
        f"{' (within the noise floor: not settled)' if floor >= 0.03 - ours else ''};"
        f" less than django-prometheus ({peer * 100:.1f} %): {'yes' if ours < peer else 'NO'}"
    )
    print("  in-process cost per request (WSGI handler, one process, best of 15 x 2000):")
    cost = bench_in_process()
    for v in ("none", "ops", "django_prometheus"):
        extra = (cost[v] - cost["none"]) * 1e6
        print(f"  {v:32s} {cost[v] * 1e6:8.1f} us/request  (+{extra:.1f} us)")
    ratio = (cost["django_prometheus"] - cost["none"]) / max(1e-9, cost["ops"] - cost["none"])
    print(f"  django-prometheus adds {ratio:.1f}x the per-request cost ours adds")


def main() -> int:
    with (
        scratch_database(f"metrics_{os.getpid()}") as db,
        tempfile.TemporaryDirectory(prefix="bench-metrics-") as var_dir,
    ):
        env = prepare_environment(db, var_dir)
        import django

        django.setup()
        try:
            run_parts(env)
        finally:
            cleanup()
    return 0


def run_parts(env: dict[str, str]) -> None:
    """The parts named in BENCH_PARTS, in order, with the load average around them."""
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    store = "Redis" if settings.REDIS_URL else "database (no REDIS_URL)"
    print(f"database: {connection.vendor}; counter store: {store}; {os.cpu_count()} CPUs")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    if "1" in PARTS:
        bench_overhead(env)
    if "1b" in PARTS:
        bench_instructions(env)
    if "2" in PARTS:
        print(f"\n[2] /metrics scrape with {ROUTES} routes", flush=True)
        bench_scrape()
        for lifetimes in (2, 50):
            times = bench_multiprocess(lifetimes)
            print(
                f"  prometheus-client multiprocess, {lifetimes} worker lifetimes: "
                f"{median_ms(times)}"
            )
    if "3" in PARTS:
        print(f"\n[3] 30-day chart, {SERIES} series, {DAYS} days of minute data", flush=True)
        bench_chart()
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    sys.exit(main())
