"""One worker lifetime of prometheus-client's multiprocess mode, for bench_metrics.py [2]:
records the same label sets and bucket count as ours, as django-prometheus would, for the
number of routes given as the first argument, and leaves its per-pid files in
PROMETHEUS_MULTIPROC_DIR."""

import sys

from prometheus_client import Counter, Histogram

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2.5, 5, 10)
latency = Histogram(
    "django_http_requests_latency_seconds", "x", ["view", "method", "status"], buckets=BUCKETS
)
responses = Counter(
    "django_http_responses_total_by_status_view_method", "x", ["status", "view", "method"]
)
for i in range(int(sys.argv[1])):
    for method, status in (("GET", "200"), ("POST", "201"), ("GET", "404")):
        latency.labels(f"api-resource{i}", method, status).observe(0.01)
        responses.labels(status, f"api-resource{i}", method).inc()
