"""The dashboard (the admin home) under a month of data: server time and query count.

Seeds, with generate_series SQL (seconds, not minutes): 30 days of per-minute samples for
5 hosts (ResourceUsage) and of the app-wide request metrics (PerformanceMetric), with their
hourly rollups as the roll-up job builds them; a health run a minute for 30 days (each with 8
component results); 1,000,000 error events over 2,000 issues (each issue's count equal to its
events); 100,000 task results. Then times GET /admin/ (the whole page, charts included, for
each period) and the 5-second live fragment over HTTP under gunicorn, signed in as a
superuser, and counts the queries of each in-process. Target: p95 <= 150 ms.

PostgreSQL only (DATABASE_URL=postgres://...): the seeding is PostgreSQL SQL.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import (  # noqa: E402
    app_env,
    manage,
    percentile_ms,
    scratch_database,
    start_gunicorn,
)

HOSTS = 5
DAYS = 30
ISSUES = 2_000
EVENTS = 1_000_000
TASKS = 100_000
COMPONENTS = ("database", "cache", "redis", "queue", "storage", "external", "disk", "memory")
REQUESTS = 60  # timed requests per URL
TARGET_P95_MS = 150.0

SEED_SQL = [
    # --- hosts: a sample a minute for 30 days ------------------------------------------------
    """INSERT INTO metrics_resourceusage (recorded_at, host, cpu_percent, cpu_count,
       memory_percent, memory_used_bytes, memory_total_bytes, swap_percent, swap_used_bytes,
       disks, net_bytes_recv_total, net_bytes_sent_total, net_bytes_in_per_s,
       net_bytes_out_per_s, net_connections, process_count, load_1, load_5, load_15)
       SELECT m, 'web-' || h, 20 + 15 * sin(extract(epoch FROM m) / 3600.0 + h), 4,
              55 + h, 4e9, 8e9, 1, 1e7,
              jsonb_build_object('/', jsonb_build_object('total', 1e11, 'used', 6e10,
                                 'percent', 60 + h)),
              0, 0, 1e5, 5e4, 40, 150, 0.5 + h / 10.0, 0.4, 0.3
       FROM generate_series(date_trunc('minute', now()) - interval '30 days',
                            date_trunc('minute', now()) - interval '1 minute',
                            interval '1 minute') AS m,
            generate_series(1, %(hosts)s) AS h""",
    # --- app-wide request metrics: a row a minute per metric ---------------------------------
    """INSERT INTO metrics_performancemetric (recorded_at, metric, key, host, value, samples)
       SELECT m, name, '', '', CASE name
                 WHEN 'response_time_p95_ms' THEN 120 + 60 * sin(extract(epoch FROM m) / 5400.0)
                 WHEN 'response_time_p50_ms' THEN 40 + 10 * sin(extract(epoch FROM m) / 5400.0)
                 WHEN 'request_rate_per_s' THEN 20 + 10 * sin(extract(epoch FROM m) / 43200.0)
                 WHEN 'error_rate_percent' THEN 0.5
                 ELSE 3 END, 1200
       FROM generate_series(date_trunc('minute', now()) - interval '30 days',
                            date_trunc('minute', now()) - interval '1 minute',
                            interval '1 minute') AS m,
            unnest(ARRAY['response_time_p95_ms', 'response_time_p50_ms', 'request_rate_per_s',
                         'error_rate_percent', 'db_query_time_avg_ms']) AS name""",
    # --- hourly rollups, as metrics.rollups builds them --------------------------------------
    """INSERT INTO metrics_metricrollup (period, bucket, metric, key, host, count, sum, min, max,
       samples)
       SELECT 'hour', date_trunc('hour', recorded_at), metric, key, host, count(*), sum(value),
              min(value), max(value), sum(samples)
       FROM metrics_performancemetric GROUP BY 2, 3, 4, 5""",
    """INSERT INTO metrics_metricrollup (period, bucket, metric, key, host, count, sum, min, max,
       samples)
       SELECT 'hour', date_trunc('hour', recorded_at), 'cpu_percent', '', host, count(*),
              sum(cpu_percent), min(cpu_percent), max(cpu_percent), 0
       FROM metrics_resourceusage GROUP BY 2, 5""",
    # --- a health run a minute, 8 components each --------------------------------------------
    """INSERT INTO health_healthcheck (created_at, status, duration_ms, trigger, hostname,
       details)
       SELECT m, CASE WHEN extract(minute FROM m) = 7 AND extract(hour FROM m) = 3
                      THEN 'fail' ELSE 'pass' END, 40, 'schedule', 'bench',
              '{"queue": {"status": "pass", "output": "", "duration_ms": 3, "observations":
                [{"measurement": "depth", "observedValue": 4, "observedUnit": "messages"},
                 {"measurement": "oldestWait", "observedValue": 1.5, "observedUnit": "s"}]}}'
       FROM generate_series(now() - interval '30 days', now(), interval '1 minute') AS m""",
    """INSERT INTO health_componentresult (run_id, created_at, component, status, duration_ms,
       output)
       SELECT r.id, r.created_at, c, r.status, 5, '' FROM health_healthcheck r,
              unnest(%(components)s::text[]) AS c""",
    """INSERT INTO health_componentstate (component, status, since, output)
       SELECT c, 'pass', now() - interval '1 day', '' FROM unnest(%(components)s::text[]) c""",
    # --- errors: 2,000 issues, 1,000,000 events ----------------------------------------------
    """INSERT INTO errors_issue (project_id, grouping_version, fingerprint, title, culprit,
       exception_type, severity, level, first_seen, created_at, last_seen, count, last_message,
       status, regressed_at)
       SELECT %(project)s, 1, md5(i::text), 'ValueError: case ' || i, 'app.views',
              'ValueError', 'error', 'error', now() - mod(i, 720) * interval '1 hour',
              now() - mod(i, 720) * interval '1 hour', now(), 0, 'bad value', 'unresolved',
              CASE WHEN mod(i, 97) = 0 THEN now() - interval '2 hours' END
       FROM generate_series(1, %(issues)s) AS i""",
    """INSERT INTO errors_errorreport (project_id, issue_id, event_id, exception_type, message,
       filename, lineno, frames, request, tags, breadcrumbs, contexts, "user", release,
       environment, platform, level, severity, reported_at, received_at)
       SELECT %(project)s, (SELECT min(id) FROM errors_issue) + mod(i, %(issues)s),
              md5(i::text), 'ValueError', 'bad value ' || i, 'app/views.py', 42, '[]', '{}',
              '{}', '[]', '{}', '{}', '1.0.' || mod(i, 7), 'production', 'python', 'error',
              'error', now() - mod(i, 43200) * interval '1 minute',
              now() - mod(i, 43200) * interval '1 minute'
       FROM generate_series(1, %(events)s) AS i""",
    """UPDATE errors_issue SET count = c.n FROM (SELECT issue_id, count(*) AS n
       FROM errors_errorreport GROUP BY issue_id) AS c WHERE c.issue_id = errors_issue.id""",
    # --- task results ------------------------------------------------------------------------
    """INSERT INTO django_celery_results_taskresult (task_id, task_name, status, content_type,
       content_encoding, result, date_created, date_done, traceback, meta)
       SELECT md5('task' || i), 'app.tasks.job_' || mod(i, 12),
              CASE WHEN mod(i, 50) = 0 THEN 'FAILURE' ELSE 'SUCCESS' END, 'application/json',
              'utf-8', 'null', now() - mod(i, 10080) * interval '1 minute',
              now() - mod(i, 10080) * interval '1 minute', NULL, '{}'
       FROM generate_series(1, %(tasks)s) AS i""",
    # --- a few rows for the other cards ------------------------------------------------------
    """INSERT INTO health_workerheartbeat (hostname, last_seen, started_at, pid)
       VALUES ('celery@bench', now(), now() - interval '1 day', 1)""",
    """INSERT INTO backups_backup (kind, status, name, storage, engine, server_version,
       app_version, encrypted, started_at, finished_at, duration, size, artifacts, row_counts,
       manifest_sha256, error, actor, hostname, verified_at, verify_error)
       SELECT 'db', 'verified', 'b' || d, '', 'postgresql', '', '', false,
              now() - d * interval '1 day', now() - d * interval '1 day' + interval '2 minutes',
              120, 1e6, '[]', '{}', '', '', 'beat', 'bench', now() - d * interval '1 day', ''
       FROM generate_series(1, 30) AS d""",
    "ANALYZE",
]

SETUP = """
import json
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from errors.models import ErrorProject
user = get_user_model().objects.create_superuser("bench", "bench@example.com", "bench-pass")
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
project = ErrorProject.objects.create(name="bench")
print(json.dumps({"session": session.session_key, "project": project.pk}))
"""

COUNT_QUERIES = """
import json
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
client = Client(HTTP_HOST="127.0.0.1")
client.force_login(get_user_model().objects.get(username="bench"))
counts = {}
for url in URLS:
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    counts[url] = len(ctx.captured_queries)
    if url == URLS[-2]:
        slow = sorted(ctx.captured_queries, key=lambda q: -float(q["time"]))[:4]
        for q in slow:
            print("#", q["time"], q["sql"][:150])
print(json.dumps(counts))
"""

URLS = [
    "/admin/?period=1h",
    "/admin/?period=24h",
    "/admin/?period=7d",
    "/admin/?period=30d",
    "/console/dashboard/live/",
]


def seed(url: str, project: int) -> float:
    import psycopg

    started = time.perf_counter()
    params = {
        "hosts": HOSTS,
        "components": list(COMPONENTS),
        "project": project,
        "issues": ISSUES,
        "events": EVENTS,
        "tasks": TASKS,
    }
    with psycopg.connect(url, autocommit=True) as conn:
        for sql in SEED_SQL:
            conn.execute(sql, params if "%(" in sql else None)
    return time.perf_counter() - started


def time_urls(base: str, session: str) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {u: [] for u in URLS}
    with httpx.Client(base_url=base, cookies={"sessionid": session}, timeout=30) as client:
        for url in URLS:  # warm each worker's caches and the database's
            for _ in range(3):
                assert client.get(url).status_code == 200, url
        for _ in range(REQUESTS):
            for url in URLS:
                started = time.perf_counter()
                response = client.get(url)
                timings[url].append(time.perf_counter() - started)
                if (
                    response.status_code != 200
                    or b"Dashboard" not in response.content
                    and ("live" not in url)
                ):
                    raise SystemExit(f"{url} answered {response.status_code}")
    return timings


def report(timings: dict[str, list[float]], counts: dict[str, int]) -> None:
    worst = 0.0
    print(f"{'URL':28} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8}")
    for url in URLS:
        p95 = percentile_ms(timings[url], 95)
        worst = max(worst, p95)
        p50 = statistics.median(timings[url]) * 1000
        print(f"{url:28} {p50:8.1f} {p95:8.1f} {counts[url]:8d}")
    verdict = "meets" if worst <= TARGET_P95_MS else "misses"
    print(f"worst p95 {worst:.1f} ms: {verdict} the {TARGET_P95_MS:.0f} ms target", flush=True)


def main() -> int:
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        print("bench_dashboard needs PostgreSQL: set DATABASE_URL=postgres://...")
        return 0
    # A name per run: a previous run's database may still be waiting to be dropped.
    with scratch_database(f"dashboard_{os.getpid()}") as db, tempfile.TemporaryDirectory() as var:
        env = app_env(db.url, var, REDIS_URL="", OPS_METRICS_FLUSH_INTERVAL="5")
        manage(env, "migrate", "--noinput")
        manage(env, "collectstatic", "--noinput")
        manage(env, "createcachetable")  # as `serve` does: the cache is the database here
        made = json.loads(manage(env, "shell", "-c", SETUP).strip().splitlines()[-1])
        seconds = seed(db.url, made["project"])
        print(f"seeded in {seconds:.0f} s: {HOSTS} hosts x {DAYS} days of minutes, "
              f"{EVENTS:,} error events in {ISSUES:,} issues, {TASKS:,} task results",
              flush=True)  # fmt: skip
        script = f"URLS = {URLS!r}\n{COUNT_QUERIES}"
        out = manage(env, "shell", "-c", script).strip().splitlines()
        print("slowest queries of", URLS[-2], *[line for line in out if line.startswith("#")],
              sep="\n", flush=True)  # fmt: skip
        counts = json.loads(out[-1])
        log = Path(var) / "gunicorn.log"
        with start_gunicorn("--workers", "2", env=env, log=log) as server:
            timings = time_urls(server.url, made["session"])
        # Printed before the scratch database is dropped (a drop can wait on a busy server).
        report(timings, counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
