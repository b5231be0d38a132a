"""Mixed load with hostile ingest: does an attacker with a DSN hurt the load balancer's view of
the console, or the valid events of everyone else?

One run, real gunicorn + a real Celery worker (digesting the inbox) on loopback, two phases of
the same length back to back:
  1. baseline: load-balancer polls of /health/ready (paced, 20/s, Host = a bare IP) and valid
     sentry-sdk envelopes (closed loop, 4 keep-alive connections);
  2. the same, plus hostile ingest on 4 more connections: compression bombs (gzip, deflate,
     brotli; 64+ MiB when expanded), JSON nested 100,000 deep, events carrying 1 MiB strings
     (valid escapes, within and past the event cap), random bytes.
  3. hostile ingest alone, 10 s each, to a project over its quota and with a wrong key: what
     one refused request costs the web server (gunicorn included);
then hostile_refusal_cpu.py: what one costs inside the WSGI application alone.
Reported: health p50/p99 and valid events accepted/s in each phase, and their ratios (target:
within 1.2x), the hostile answers by kind and status, the peak RSS of the web processes
(gunicorn master + workers) and of the worker processes (Celery) in each phase, and the web
server's CPU time per accepted event and per hostile answer (read from /proc: robust to other
load on the machine, where wall-clock rates are not). After the phases the inbox is drained
and every accepted valid event must be stored.

The valid envelopes are the real sentry-sdk's: captured once through a transport that keeps
them, then replayed with a fresh event_id per send.

Environment: DATABASE_URL (PostgreSQL: a scratch database `<name>_bench` is created and
dropped, as bench_errors.py does; otherwise a temporary SQLite file), REDIS_URL (the broker
and cache; without it the filesystem broker), BENCH_HOSTILE_SECONDS (each phase, default 60;
or the first argument), BENCH_HOSTILE_VALID_RATE (valid events/s, paced; default 0: closed
loop), BENCH_HOSTILE_WEB_WORKERS and BENCH_HOSTILE_THREADS (gunicorn's, default 2 x 4; with
BENCH_HOSTILE_THREADS=1, sync workers, as the Procfile and docker-compose.yml run them).
"""

from __future__ import annotations

import gzip
import http.client
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import brotli
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import (  # noqa: E402
    BENCH,
    ROOT,
    Gunicorn,
    MemorySampler,
    app_env,
    cpu_seconds,
    error_project,
    scratch_database,
    start_gunicorn,
)

SECONDS = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("BENCH_HOSTILE_SECONDS", "60"))
HEALTH_RATE = 20
# Valid events/s in all, paced (as SDKs send what happens); 0: a closed loop, as fast as the
# server accepts them, which measures the server's spare capacity rather than service.
VALID_RATE = float(os.environ.get("BENCH_HOSTILE_VALID_RATE", "0"))
# The load generators run on their own CPUs, as they would on other machines: the server
# (gunicorn and the Celery worker) gets the first half of this process's CPUs, the clients the
# rest (PostgreSQL and Redis are not pinned). BENCH_HOSTILE_PIN=0 turns this off.
_CPUS = sorted(os.sched_getaffinity(0))
PIN = os.environ.get("BENCH_HOSTILE_PIN", "1") != "0" and len(_CPUS) >= 2
SERVER_CPUS = set(_CPUS[: len(_CPUS) // 2]) if PIN else set(_CPUS)
CLIENT_CPUS = set(_CPUS[len(_CPUS) // 2 :]) if PIN else set(_CPUS)


def _on_server_cpus() -> None:
    os.sched_setaffinity(0, SERVER_CPUS)


def _pinned(target: object, *args: object) -> None:
    """A client process's entry point: move to the clients' CPUs, then run `target`."""
    os.sched_setaffinity(0, CLIENT_CPUS)
    target(*args)  # type: ignore[operator]


VALID_CONNECTIONS = 4
HOSTILE_CONNECTIONS = 4
WEB_WORKERS = int(os.environ.get("BENCH_HOSTILE_WEB_WORKERS", "2"))
THREADS = int(os.environ.get("BENCH_HOSTILE_THREADS", "4"))
MiB = 2**20


# --- bodies -----------------------------------------------------------------------------------
def sdk_envelopes(n: int = 20) -> list[bytes]:
    """Envelopes written by the real sentry-sdk for `n` distinct errors (raw, uncompressed)."""
    import sentry_sdk
    from sentry_sdk.transport import Transport

    class Keep(Transport):
        # On the class, not a local: the capturing frame's locals go into each event.
        captured: list[bytes] = []

        def capture_envelope(self, envelope: object) -> None:
            Keep.captured.append(envelope.serialize())  # type: ignore[attr-defined]

    sentry_sdk.init(
        dsn="http://0123456789abcdef0123456789abcdef@127.0.0.1/1",
        transport=Keep,
        default_integrations=False,
        include_local_variables=True,
        release="shop@4.2.0",
        environment="production",
    )
    for i in range(n):
        try:
            _charge({"id": i, "total": 10.5 * i, "lines": list(range(i % 7))}, kind=i % 5)
        except ValueError:
            sentry_sdk.capture_exception()
    sentry_sdk.flush()
    client = sentry_sdk.get_client()
    client.close()
    return Keep.captured


def _charge(order: dict[str, object], kind: int) -> None:
    """Fails like a shop's payment step (the frame's locals go into the event)."""
    card = {"last4": "4242", "brand": "visa"}
    raise ValueError(f"order {order['id']} could not be charged with {card['brand']}: kind {kind}")


def hostile_bodies() -> list[tuple[str, str, str, bytes]]:
    """(kind, endpoint, Content-Encoding, body)."""
    zeros = b"\0" * (65 * MiB)
    event_id = uuid.uuid4().hex
    head = json.dumps({"event_id": event_id}).encode() + b"\n"

    def item(payload: bytes) -> bytes:
        return json.dumps({"type": "event", "length": len(payload)}).encode() + b"\n" + payload

    def event_with(raw: bytes) -> bytes:
        return b'{"event_id":"' + event_id.encode() + b'","message":' + raw + b"}"

    deep = b"[" * 100_000 + b"]" * 100_000
    escapes = b'"' + b"\\u0041" * (MiB // 6 - 20) + b'"'  # ~1 MiB of escapes, 170 K chars
    plain = json.dumps("a" * (MiB - 200)).encode()  # just under the 1 MiB event cap
    past = json.dumps("a" * (MiB + 10)).encode()  # just past it
    rng = random.Random(7)
    return [
        ("gzip bomb", "envelope", "gzip", gzip.compress(zeros, compresslevel=9)),
        ("deflate bomb", "envelope", "deflate", zlib.compress(zeros, 9)),
        ("brotli bomb", "envelope", "br", brotli.compress(zeros, quality=5)),
        ("deep nesting", "store", "", deep),
        ("deep nesting", "envelope", "gzip", gzip.compress(head + item(deep))),
        ("1 MiB escapes", "store", "gzip", gzip.compress(event_with(escapes))),
        ("1 MiB string", "envelope", "gzip", gzip.compress(head + item(event_with(plain)))),
        ("1 MiB string past cap", "store", "", event_with(past)),
        ("random bytes", "envelope", "", rng.randbytes(64 * 1024)),
    ]


# --- clients ----------------------------------------------------------------------------------
def _poll_health(load: Load, seconds: float, out: multiprocessing.Queue) -> None:
    """The load balancer: GET /health/ready at HEALTH_RATE/s with a bare-IP Host."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    port = load.port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    start = time.perf_counter()
    i = 0
    while True:
        due = start + i / HEALTH_RATE
        if due - start >= seconds:
            break
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        t0 = time.perf_counter()
        try:
            conn.request("GET", "/health/ready", headers={"Host": "10.0.0.1"})
            response = conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            status = 0
        latencies.append(time.perf_counter() - t0)
        statuses[status] = statuses.get(status, 0) + 1
        i += 1
    out.put(("health", latencies, statuses))


def _send_valid(load: Load, seconds: float, out: multiprocessing.Queue) -> None:
    """Valid envelopes on VALID_CONNECTIONS keep-alive connections: closed loop, or paced at
    load.valid_rate events/s in all (open loop: a late send goes at once, none is skipped)."""
    accepted: list[str] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    start = time.perf_counter()
    stop = start + seconds
    project_id, auth = load.valid
    path = f"/api/{project_id}/envelope/"
    headers = {
        "Content-Type": "application/x-sentry-envelope",
        "Content-Encoding": "gzip",
        "X-Sentry-Auth": auth,
    }

    def run(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", load.port, timeout=60)
        n = offset
        while time.perf_counter() < stop:
            if load.valid_rate:
                delay = start + n / load.valid_rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            template = load.templates[n % len(load.templates)]
            n += VALID_CONNECTIONS
            old = json.loads(template.split(b"\n", 1)[0])["event_id"].encode()
            new = uuid.uuid4().hex
            body = gzip.compress(template.replace(old, new.encode()), compresslevel=1)
            conn, status = _post(conn, load.port, path, body, headers)
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    accepted.append(new)

    _run_threads(run, range(VALID_CONNECTIONS))
    out.put(("valid", accepted, statuses))


def _run_threads(target: Callable[[int], None], offsets: Iterable[int]) -> None:
    pool = [threading.Thread(target=target, args=(i,)) for i in offsets]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


def _post(
    conn: http.client.HTTPConnection, port: int, path: str, body: bytes, headers: dict[str, str]
) -> tuple[http.client.HTTPConnection, int]:
    """POST on a keep-alive connection: (the connection to use next, the status; 0 when the
    connection failed, and a fresh one is returned)."""
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return conn, response.status
    except (OSError, http.client.HTTPException):
        conn.close()
        return http.client.HTTPConnection("127.0.0.1", port, timeout=60), 0


def _send_hostile(load: Load, seconds: float, out: multiprocessing.Queue) -> None:
    results: dict[str, dict[int, int]] = {}
    lock = threading.Lock()
    stop = time.perf_counter() + seconds
    project_id, auth = load.attacked

    def run(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", load.port, timeout=60)
        n = offset
        while time.perf_counter() < stop:
            kind, endpoint, encoding, body = load.hostile[n % len(load.hostile)]
            n += 1
            headers = {"Content-Type": "application/x-sentry-envelope", "X-Sentry-Auth": auth}
            if encoding:
                headers["Content-Encoding"] = encoding
            path = f"/api/{project_id}/{endpoint}/"
            conn, status = _post(conn, load.port, path, body, headers)
            with lock:
                counts = results.setdefault(f"{kind} ({endpoint})", {})
                counts[status] = counts.get(status, 0) + 1

    _run_threads(run, (i * 2 for i in range(HOSTILE_CONNECTIONS)))
    out.put(("hostile", results, {}))


@dataclass
class Load:
    """What the clients of a phase send, and where."""

    port: int
    valid: tuple[int, str]  # the backend project's id and X-Sentry-Auth
    attacked: tuple[int, str]  # the browser project's, whose DSN the attacker holds
    spent: tuple[int, str]  # a project whose quota for the day is used up
    wrong_key: tuple[int, str]  # the browser project's id with a key that is not its own
    templates: list[bytes]
    hostile: list[tuple[str, str, str, bytes]]
    valid_rate: float = 0.0  # valid events/s in all; 0: closed loop


CLIENTS = {"health": _poll_health, "valid": _send_valid, "hostile": _send_hostile}


def run_clients(load: Load, roles: tuple[str, ...], seconds: float) -> dict[str, tuple]:
    """Run the named clients, each in its own process on the clients' CPUs, for `seconds`;
    what each one reported, by role."""
    out: multiprocessing.Queue = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=_pinned, args=(CLIENTS[role], load, seconds, out))
        for role in roles
    ]
    for p in procs:
        p.start()
    results = {}
    for _ in procs:
        role, data, statuses = out.get(timeout=seconds + 300)
        results[role] = (data, statuses)
    for p in procs:
        p.join()
    return results


def phase(
    name: str, load: Load, roles: tuple[str, ...], samplers: dict[str, MemorySampler],
    seconds: float = SECONDS,
) -> dict[str, Any]:  # fmt: skip
    """One phase: the clients in `roles` for `seconds`; its figures, printed and returned."""
    for sampler in samplers.values():
        sampler.peak = 0
    cpu0 = {k: cpu_seconds(v.procs[0].pid) for k, v in samplers.items()}
    t0 = time.perf_counter()
    results = run_clients(load, roles, seconds)
    wall = time.perf_counter() - t0
    summary: dict[str, Any] = {
        "name": name,
        "seconds": seconds,
        "wall": wall,
        "hostile": results.get("hostile", ({}, {}))[0],
        "accepted_ids": results.get("valid", ([], {}))[0],
    }
    for role, sampler in samplers.items():
        summary[f"{role}_cpu_s"] = cpu_seconds(sampler.procs[0].pid) - cpu0[role]
        summary[f"{role}_peak_mib"] = sampler.peak / MiB
    summary["hostile_answered"] = sum(
        n for counts in summary["hostile"].values() for status, n in counts.items() if status
    )
    if "health" in results:
        latencies, summary["health_statuses"] = results["health"]
        qs = statistics.quantiles(latencies, n=100, method="inclusive")
        summary.update(
            health_polls=len(latencies),
            health_p50_ms=qs[49] * 1000,
            health_p99_ms=qs[98] * 1000,
            health_max_ms=max(latencies) * 1000,
        )
    if "valid" in results:
        summary["valid_statuses"] = results["valid"][1]
        summary["valid_per_s"] = len(summary["accepted_ids"]) / seconds
    print_phase(summary)
    return summary


def print_phase(s: dict[str, Any]) -> None:
    parts = []
    if "health_p99_ms" in s:
        parts.append(
            f"health p50 {s['health_p50_ms']:.1f} ms, p99 {s['health_p99_ms']:.1f} ms, max "
            f"{s['health_max_ms']:.0f} ms ({s['health_polls']} polls, statuses "
            f"{s['health_statuses']})"
        )
    if "valid_per_s" in s:
        per_event = s["web_cpu_s"] / max(1, len(s["accepted_ids"])) * 1000
        parts.append(
            f"valid events accepted {s['valid_per_s']:.1f}/s (statuses {s['valid_statuses']}; "
            f"web CPU {per_event:.2f} ms per accepted event, all requests included)"
        )
    if s["hostile_answered"]:
        per_request = s["web_cpu_s"] / s["hostile_answered"] * 1000
        parts.append(
            f"hostile requests answered {s['hostile_answered'] / s['seconds']:.0f}/s "
            f"(web CPU {per_request:.2f} ms per answer, all requests included)"
        )
    parts.append(
        f"peak RSS web {s['web_peak_mib']:.0f} MiB, worker {s['worker_peak_mib']:.0f} MiB; "
        f"server CPU web {s['web_cpu_s']:.1f} s, worker {s['worker_cpu_s']:.1f} s in "
        f"{s['wall']:.0f} s"
    )
    print(f"{s['name']}: " + "; ".join(parts), flush=True)
    for kind, counts in sorted(s["hostile"].items()):
        print(f"  hostile {kind}: {dict(sorted(counts.items()))}")


def start_services(env: dict[str, str], log: Path) -> tuple[Gunicorn, subprocess.Popen[bytes]]:
    """gunicorn (gthread, or sync with one thread) and one Celery worker, both writing to
    `log`."""
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "opsconsole", "worker", "--loglevel=WARNING",
            "--concurrency=1", "--without-mingle", "--without-gossip", "-Q", "celery,ingest",
        ],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        preexec_fn=_on_server_cpus,
    )  # fmt: skip
    try:
        gunicorn = start_gunicorn(
            "-w", str(WEB_WORKERS), "-k", "gthread" if THREADS > 1 else "sync",
            "--threads", str(THREADS),
            "--log-level", "warning", "--keep-alive", "30", "--timeout", "60",
            app="opsconsole.wsgi", env=env, log=log, preexec_fn=_on_server_cpus,
        )  # fmt: skip
    except BaseException:
        stop(worker)
        raise
    return gunicorn, worker


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


def describe(templates: list[bytes], hostile: list[tuple[str, str, str, bytes]]) -> None:
    average = statistics.mean(map(len, templates)) / 1024
    wire = sum(len(b[3]) for b in hostile) / MiB
    print(
        f"{len(templates)} sentry-sdk envelopes (avg {average:.1f} KiB raw); "
        f"{len(hostile)} hostile bodies, {wire:.1f} MiB on the wire in all",
        flush=True,
    )


def run_phases(env: dict[str, str], var_dir: Path, load: Load) -> list[str]:
    """The baseline phase, then the hostile one, then two short ones of hostile traffic alone
    (what one refused request costs: to a project over its quota, with a wrong key), against
    one gunicorn and worker; prints the ratios and returns the ids of the valid events the
    server accepted."""
    describe(load.templates, load.hostile)
    # Server output (a traceback per 500) goes to a file; its count is printed at the end.
    gunicorn, worker = start_services(env, var_dir / "server.log")
    try:
        load.port = gunicorn.port
        samplers = {"web": MemorySampler(), "worker": MemorySampler()}
        samplers["web"].watch(gunicorn.process.pid)
        samplers["worker"].watch(worker.pid)
        for sampler in samplers.values():
            sampler.start()
        time.sleep(3)
        base = phase("baseline", load, ("health", "valid"), samplers)
        mixed = phase("with hostile", load, ("health", "valid", "hostile"), samplers)
        for name, target in (("spent quota", load.spent), ("wrong key", load.wrong_key)):
            alone = replace(load, attacked=target)
            phase(f"hostile alone, {name}", alone, ("hostile",), samplers, min(SECONDS, 10))
    finally:
        gunicorn.stop()
        stop(worker)
    print_ratios(base, mixed)
    return [*base["accepted_ids"], *mixed["accepted_ids"]]


def print_ratios(base: dict[str, Any], mixed: dict[str, Any]) -> None:
    p99 = mixed["health_p99_ms"] / base["health_p99_ms"]
    rate = base["valid_per_s"] / mixed["valid_per_s"]
    where = (
        f"server on CPUs {sorted(SERVER_CPUS)}, clients on {sorted(CLIENT_CPUS)}"
        if PIN
        else f"{psutil.cpu_count()} CPUs shared by server, worker and clients"
    )
    print(
        f"health p99 with/without hostile traffic: x{p99:.2f}; valid accepted/s "
        f"without/with: x{rate:.2f} (target: both within 1.2x; {where}; valid load "
        + (f"paced at {VALID_RATE:g}/s)" if VALID_RATE else "closed loop)")
    )


def refusal_cpu(env: dict[str, str], load: Load) -> None:
    """Print what one refused post costs inside the WSGI application (hostile_refusal_cpu.py):
    CPU time, robust to the machine's other load where the phases' wall-clock rates are not."""
    project_id, auth = load.spent
    wrong = load.wrong_key[1]
    out = subprocess.run(
        [sys.executable, str(BENCH / "hostile_refusal_cpu.py"), str(project_id), auth, wrong],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    print(out.stdout.strip() if out.returncode == 0 else f"refusal CPU: failed {out.stderr[-500:]}")


def check_stored(env: dict[str, str], var_dir: Path, ids: list[str]) -> None:
    """Drain the worker's backlog and check every accepted valid event was stored."""
    ids_file = var_dir / "accepted.txt"
    ids_file.write_text("\n".join(ids))
    out = subprocess.run(
        [sys.executable, str(BENCH / "hostile_count.py"), str(ids_file)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode:
        raise SystemExit(f"drain failed: {out.stderr[-2000:]}")
    stored, left = map(int, out.stdout.split()[-2:])
    print(f"valid events accepted {len(ids)}, stored {stored}, inbox left {left}")
    log = (var_dir / "server.log").read_bytes()
    print(
        f"server log: {log.count(b'Traceback (most recent call last)')} tracebacks "
        f"({var_dir / 'server.log'})"
    )
    if stored != len(ids):
        raise SystemExit(f"lost valid events: accepted {len(ids)}, stored {stored}")


def main() -> int:
    broker = os.environ.get("REDIS_URL", "")
    with scratch_database("bench") as db:
        var_dir = Path(tempfile.mkdtemp(prefix="bench-hostile-var-"))
        env = app_env(db.url, var_dir, LOG_LEVEL="ERROR", OPS_ERRORS_CAPTURE="1")
        env.pop("CELERY_BROKER_URL", None)  # without Redis: the filesystem broker in var_dir
        if broker:
            env["CELERY_BROKER_URL"] = broker
        print(
            f"setting up ({db.engine}, broker {'Redis' if broker else 'files'}"
            f"), {SECONDS} s per phase",
            flush=True,
        )
        # The attacker holds one project's DSN (a browser app's: the key is public there); the
        # valid events are another project's (a backend's), whose limits are lifted so that its
        # closed loop measures throughput. The attacked project keeps the shipped quotas.
        path, auth = error_project(
            env, "backend", "rate_limit_per_minute=10**9, bytes_per_minute=0, bytes_per_day=0"
        )
        target_path, target_auth = error_project(env, "browser", "")
        spent_path, spent_auth = error_project(env, "spent", "bytes_per_day=1")
        wrong = target_auth.replace("sentry_key=", "sentry_key=0")  # a key of no project
        load = Load(
            port=0,
            valid=(int(path.split("/")[2]), auth),
            attacked=(int(target_path.split("/")[2]), target_auth),
            spent=(int(spent_path.split("/")[2]), spent_auth),
            wrong_key=(int(target_path.split("/")[2]), wrong),
            templates=sdk_envelopes(),
            hostile=hostile_bodies(),
            valid_rate=VALID_RATE,
        )
        ids = run_phases(env, var_dir, load)
        refusal_cpu(env, load)
        check_stored(env, var_dir, ids)
    return 0


if __name__ == "__main__":
    sys.exit(main())
