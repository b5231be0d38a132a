"""The errors pages and the metrics detail pages with a big database: server time per page
view (Django test client, in process) and the statements each runs.

Seeds, with SQL (generate_series), BENCH_EVENTS error events (default 1,000,000) over 5,000
issues (one hot issue with 1,000 kept events), 50 releases, 3 environments and 4 tag keys; 30
days of per-minute figures for 40 routes (7 series each; minute rows for the last 2 days,
hourly rollups before) and 100,000 slow queries in 500 shapes. Then times each page 20 times
and prints the median and p95.

Database: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/ops_detail_bench; a
throwaway test_<name> database is created and dropped).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EVENTS = int(os.environ.get("BENCH_EVENTS", "1000000"))
ISSUES = 5000
RUNS = 20
os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ops_detail_bench"
)
os.environ.pop("REDIS_URL", None)
os.environ["DJANGO_SETTINGS_MODULE"] = "opsconsole.settings_test"

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

SEED_ERRORS = """
INSERT INTO errors_errorproject (name, created_at, rate_limit_per_minute, bytes_per_minute,
  bytes_per_day, new_issues_per_hour, retention_days, max_events_per_issue, alert_on_critical,
  alert_on_new_issue, alert_on_regression, frequency_threshold, frequency_window_minutes,
  business_hours_alerts, business_hours_start, business_hours_end, business_days,
  business_timezone)
VALUES ('bench', now(), 0, 0, 0, 0, 90, 1000, false, false, false, 10, 60, false, 9, 17,
  '0,1,2,3,4', 'UTC');
INSERT INTO errors_issue (project_id, grouping_version, fingerprint, title, culprit,
  exception_type, severity, level, first_seen, created_at, last_seen, count, last_message, status)
SELECT 1, 1, md5(i::text), 'KeyError: key ' || i, 'app.views.f' || i, 'KeyError', 'error',
  'error', now() - interval '30 days', now(), now() - (i || ' seconds')::interval, 0,
  'message number ' || i, 'unresolved'
FROM generate_series(1, %(issues)s) i;
INSERT INTO errors_errorreport (project_id, issue_id, event_id, exception_type, message,
  filename, frames, request, tags, breadcrumbs, contexts, "user", release, environment,
  platform, level, severity, reported_at, received_at)
SELECT 1, CASE WHEN i <= 1000 THEN 1 ELSE 2 + i %% (%(issues)s - 1) END, md5(i::text),
  'KeyError', 'message ' || i, 'app/views.py', '[]', '{}',
  jsonb_build_object('browser', (ARRAY['Firefox','Chrome','Safari'])[1 + i %% 3],
                     'os', (ARRAY['Linux','macOS','Windows','iOS'])[1 + i %% 4],
                     'server', 'web-' || (i %% 20), 'customer', 'c' || (i %% 5000)),
  '[]', '{}', jsonb_build_object('id', 'user-' || (i %% 1000)),
  'app@1.' || (i %% 50), (ARRAY['production','staging','development'])[1 + i %% 3],
  'python', 'error', 'error',
  now() - ((i %% 2592000) || ' seconds')::interval, now() - ((i %% 2592000) || ' seconds')::interval
FROM generate_series(1, %(events)s) i;
UPDATE errors_issue SET count = 1000 WHERE id = 1;
ANALYZE errors_errorreport; ANALYZE errors_issue;
"""

SEED_METRICS = """
INSERT INTO metrics_performancemetric (recorded_at, metric, key, host, value, samples)
SELECT date_trunc('minute', now()) - (m || ' minutes')::interval, metric, 'route/' || r || '/',
  '', 10 + r + (m % 7), 20
FROM generate_series(1, 2880) m, generate_series(1, 40) r,
  unnest(ARRAY['route_requests','route_response_time_p50_ms','route_response_time_p95_ms',
               'route_response_time_p99_ms','route_errors','route_queries_per_request',
               'route_query_time_avg_ms']) metric;
INSERT INTO metrics_metricrollup (period, bucket, metric, key, host, count, sum, min, max, samples)
SELECT 'hour', date_trunc('hour', now()) - (h || ' hours')::interval, metric, 'route/' || r || '/',
  '', 60, 600 + r, 1, 20, 1200
FROM generate_series(1, 720) h, generate_series(1, 40) r,
  unnest(ARRAY['route_requests','route_response_time_p50_ms','route_response_time_p95_ms',
               'route_response_time_p99_ms','route_errors','route_queries_per_request',
               'route_query_time_avg_ms']) metric;
INSERT INTO metrics_slowquery (created_at, route, sql, normalized, fingerprint, duration_ms,
  request_id, host)
SELECT now() - ((i % 2592000) || ' seconds')::interval, 'route/', 'SELECT * FROM t' || (i % 500)
  || ' WHERE id = ' || i, 'SELECT * FROM t' || (i % 500) || ' WHERE id = ?',
  md5('t' || (i % 500)), 100 + i % 900, '', ''
FROM generate_series(1, 100000) i;
ANALYZE metrics_performancemetric; ANALYZE metrics_metricrollup; ANALYZE metrics_slowquery;
"""

PAGES = [
    ("issue list", "/admin/errors/issue/"),
    ("issue list ?release=", "/admin/errors/issue/?release=app@1.7"),
    ("issue list ?environment=", "/admin/errors/issue/?environment=staging"),
    ("issue list ?tag=", "/admin/errors/issue/?tag=customer:c42"),
    ("issue list ?q=", "/admin/errors/issue/?q=number+4242"),
    ("issue page (1,000 events)", "/admin/errors/issue/1/change/"),
    ("issue page ?event=500", "/admin/errors/issue/1/change/?event=500"),
    ("issue page (200 events)", "/admin/errors/issue/3/change/"),
    ("metrics routes 24h", "/console/metrics/routes/?period=24h"),
    ("metrics routes 30d", "/console/metrics/routes/?period=30d"),
    ("metrics slow 30d", "/console/metrics/slow/?period=30d"),
]


def main() -> int:
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(SEED_ERRORS, {"issues": ISSUES, "events": EVENTS})
            cursor.execute(SEED_METRICS)
        print(f"seeded {EVENTS:,} events in {time.perf_counter() - started:.0f} s")
        User.objects.create_superuser("alice", "alice@example.com", "pw")
        client = Client()
        client.force_login(User.objects.get(username="alice"))
        print("| page | median ms | p95 ms | statements |")
        print("|---|---|---|---|")
        for name, url in PAGES:
            times = []
            for _ in range(RUNS):
                with CaptureQueriesContext(connection) as queries:
                    begin = time.perf_counter()
                    response = client.get(url)
                    times.append((time.perf_counter() - begin) * 1000)
                assert response.status_code == 200, (url, response.status_code)
            times.sort()
            p95 = times[int(0.95 * (len(times) - 1))]
            print(f"| {name} | {statistics.median(times):.0f} | {p95:.0f} | {len(queries)} |")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
