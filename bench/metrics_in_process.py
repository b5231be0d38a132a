"""bench_metrics.py [1], in-process cost: seconds per request through the full WSGI handler
for each middleware set-up (none, ops, django_prometheus).

Three handlers in one process, batches alternated, the fastest batch of each kept; prints
{set-up: seconds per request} as JSON. Run with DJANGO_SETTINGS_MODULE=bench.metrics_settings
and BENCH_MIDDLEWARE=django_prometheus (so its app is installed; each handler has its own stack).
"""

import io
import json
import time

import django

django.setup()

from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from bench import metrics_settings as b  # noqa: E402

base = [m for m in b._MIDDLEWARE if m != b.OURS]
stacks = {
    "none": base,
    "ops": list(b._MIDDLEWARE),
    "django_prometheus": [
        "django_prometheus.middleware.PrometheusBeforeMiddleware",
        *base,
        "django_prometheus.middleware.PrometheusAfterMiddleware",
    ],
}
handlers = {}
for name, stack in stacks.items():
    with override_settings(MIDDLEWARE=stack):
        handlers[name] = WSGIHandler()
environ = {
    "REQUEST_METHOD": "GET",
    "PATH_INFO": "/trivial/",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "80",
    "wsgi.input": io.BytesIO(),
    "wsgi.url_scheme": "http",
    "HTTP_HOST": "127.0.0.1",
}


def start_response(status: str, headers: list, exc_info: object = None) -> None:
    return None


for handler in handlers.values():
    for _ in range(500):
        handler(dict(environ), start_response)
best = {name: 1.0 for name in handlers}
for _ in range(15):
    for name, handler in handlers.items():
        t = time.perf_counter()
        for _ in range(2000):
            handler(dict(environ), start_response)
        best[name] = min(best[name], (time.perf_counter() - t) / 2000)
print(json.dumps(best))
