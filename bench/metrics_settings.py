"""Settings for bench/bench_metrics.py: the project's settings, a trivial view, and one of
three request-metrics set-ups chosen by BENCH_MIDDLEWARE (none, ops, django_prometheus; and
control, a second "none" that shows the noise floor between two identical servers)."""

import os

from opsconsole.settings import *  # noqa: F403
from opsconsole.settings import INSTALLED_APPS as _APPS
from opsconsole.settings import MIDDLEWARE as _MIDDLEWARE

OURS = "metrics.middleware.RequestMetricsMiddleware"
ROOT_URLCONF = "bench.metrics_urls"
_variant = os.environ.get("BENCH_MIDDLEWARE", "ops")
_base = [m for m in _MIDDLEWARE if m != OURS]
if _variant in ("none", "control"):  # control: a second, identical server (A/A noise floor)
    MIDDLEWARE = _base
elif _variant == "ops":
    MIDDLEWARE = list(_MIDDLEWARE)
elif _variant == "django_prometheus":
    # As its README says: Before first, After last.
    INSTALLED_APPS = [*_APPS, "django_prometheus"]
    MIDDLEWARE = [
        "django_prometheus.middleware.PrometheusBeforeMiddleware",
        *_base,
        "django_prometheus.middleware.PrometheusAfterMiddleware",
    ]
else:
    raise RuntimeError(f"BENCH_MIDDLEWARE={_variant!r}: none, control, ops or django_prometheus")
