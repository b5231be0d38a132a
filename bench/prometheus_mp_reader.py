"""A /metrics scrape in prometheus-client's multiprocess mode, for bench_metrics.py [2]: merges
the per-pid files in PROMETHEUS_MULTIPROC_DIR ten times and prints each duration in seconds."""

import time

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

times = []
for _ in range(10):
    t = time.perf_counter()
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    generate_latest(registry)
    times.append(time.perf_counter() - t)
print(" ".join(str(x) for x in times))
