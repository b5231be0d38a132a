"""Health endpoints under gunicorn (sync workers) with ~50 concurrent pollers on loopback.

Compares, in the same run:
  /health/live   vs a bare Django view returning "ok"            (target >= 0.9x)
  /health/ready  vs django-health-check 4.x's stock HealthCheckView with the same checks
                 (database, cache, Redis)                          (target >= 3x)
  /health/ready  uncached (OPS_HEALTH_CACHE_TTL=0) vs the same stock view, for the runner alone
  /health/       with one hung dependency (a socket that never answers): response times

Needs wrk (Debian package `wrk`). Its database is a scratch one from bench/harness.py
(PostgreSQL when DATABASE_URL points at it, else SQLite); Redis: BENCH_REDIS_URL, else
REDIS_URL, else redis://127.0.0.1:6379/9. BENCH_SECONDS sets each load run's length
(default 10).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import harness  # noqa: E402
from bench.harness import ROOT, start_gunicorn  # noqa: E402
from tests.servers import SilentServer  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = 50
TOKEN = "bench-health-token-0123456789abcdef"
WORKERS = str(os.cpu_count() or 2)
DATABASE: list[str] = []  # the scratch database's URL, once main() has made it


def base_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="bench.health_settings",
        DATABASE_URL=DATABASE[0],
        REDIS_URL=os.environ.get("BENCH_REDIS_URL")
        or os.environ.get("REDIS_URL")
        or "redis://127.0.0.1:6379/9",
        OPS_HEALTH_TOKEN=TOKEN,
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


@contextmanager
def gunicorn(**extra: str) -> Iterator[str]:
    with start_gunicorn(
        "--workers", WORKERS, "--worker-class", "sync", "--timeout", "30",
        "--log-level", "warning", "--backlog", "2048",
        env=base_env(**extra),
    ) as server:  # fmt: skip
        yield server.url


def wrk(url: str) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)

    def pct(label: str) -> float:
        m = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return {
        "rps": rps,
        "p50_ms": pct("50"),
        "p99_ms": pct("99"),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def warm(url: str) -> None:
    for _ in range(20):
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(url, timeout=10).read()  # noqa: S310


def poll_latencies(url: str, seconds: float, threads: int = 10) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        while time.monotonic() < stop:
            started = time.perf_counter()
            try:
                urllib.request.urlopen(url, timeout=30).read()  # noqa: S310
            except urllib.error.HTTPError as exc:
                exc.read()
            with lock:
                latencies.append((time.perf_counter() - started) * 1000)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return latencies


def manage(*args: str) -> None:
    harness.manage(base_env(), *args)


def load_runs(results: dict[str, Any]) -> None:
    """wrk against the bare view, /health/live, the stock ready view and ours (cached, then
    uncached), each on a warmed-up server."""
    with gunicorn() as url:
        warm(f"{url}/bench/ok")
        results["bare_ok"] = wrk(f"{url}/bench/ok")
        results["live"] = wrk(f"{url}/health/live")
        warm(f"{url}/bench/dhc-ready")
        results["stock_ready"] = wrk(f"{url}/bench/dhc-ready")
        warm(f"{url}/health/ready")
        results["ready"] = wrk(f"{url}/health/ready")
    with gunicorn(OPS_HEALTH_CACHE_TTL="0") as url:
        warm(f"{url}/health/ready")
        results["ready_uncached"] = wrk(f"{url}/health/ready")


def hung_dependency_run() -> dict[str, float]:
    """/health/ polled for a while with one external service that never answers."""
    hung = SilentServer()
    script = (
        "from health.models import ExternalService as E; "
        "E.objects.filter(name='bench-hung').delete();"
        f"E.objects.create(name='bench-hung', url='http://127.0.0.1:{hung.port}/', "
        "timeout_seconds=2, allow_private_network=True)"
    )
    manage("shell", "-c", script)
    try:
        with gunicorn() as url:
            warm(f"{url}/health/live")
            lat = poll_latencies(f"{url}/health/?token={TOKEN}", seconds=max(SECONDS, 10))
        return {
            "requests": len(lat),
            "p50_ms": statistics.median(lat),
            "p99_ms": sorted(lat)[int(len(lat) * 0.99) - 1],
            "max_ms": max(lat),
            "check_timeout_s": 2.0,
        }
    finally:
        manage(
            "shell",
            "-c",
            "from health.models import ExternalService as E; "
            "E.objects.filter(name='bench-hung').delete()",
        )
        hung.close()


def report(results: dict[str, Any]) -> None:
    """Print the table and the ratios, and add the ratios to `results`."""
    live_ratio = results["live"]["rps"] / results["bare_ok"]["rps"]
    ready_ratio = results["ready"]["rps"] / results["stock_ready"]["rps"]
    uncached_ratio = results["ready_uncached"]["rps"] / results["stock_ready"]["rps"]
    results["ratios"] = {
        "live_vs_bare_ok": live_ratio,
        "ready_vs_stock": ready_ratio,
        "ready_uncached_vs_stock": uncached_ratio,
    }
    print(f"{'endpoint':34} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'non-2xx':>8}")
    for key, label in [
        ("bare_ok", "bare Django view 'ok'"),
        ("live", "/health/live"),
        ("stock_ready", "django-health-check ready"),
        ("ready", "/health/ready"),
        ("ready_uncached", "/health/ready (TTL 0)"),
    ]:
        r = results[key]
        print(f"{label:34} {r['rps']:10.0f} {r['p50_ms']:9.2f} {r['p99_ms']:9.2f} {r['non2xx']:8d}")
    h = results["full_with_hung_dependency"]
    print(
        f"/health/ with a hung dependency (timeout 2 s): {h['requests']} requests, "
        f"p50 {h['p50_ms']:.1f} ms, p99 {h['p99_ms']:.1f} ms, max {h['max_ms']:.0f} ms"
    )
    print(
        f"ratio live/bare-ok {live_ratio:.2f}x (target >= 0.9x); ready/stock {ready_ratio:.1f}x "
        f"(target >= 3x); uncached ready/stock {uncached_ratio:.2f}x"
    )


def main() -> int:
    if not shutil.which("wrk"):
        print("bench_health needs wrk: apt-get install wrk", file=sys.stderr)
        return 2
    with harness.scratch_database("health") as db:
        DATABASE[:] = [db.url]
        manage("migrate", "--noinput", "-v0")
        results = measure_all()
    out = ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "health.json").write_text(json.dumps(results, indent=2))
    return 0


def measure_all() -> dict[str, Any]:
    results: dict[str, Any] = {
        "connections": CONNECTIONS,
        "seconds": SECONDS,
        "gunicorn_sync_workers": int(WORKERS),
    }
    load_runs(results)
    results["full_with_hung_dependency"] = hung_dependency_run()
    report(results)
    return results


if __name__ == "__main__":
    sys.exit(main())
