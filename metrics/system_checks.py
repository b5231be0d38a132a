"""Metrics configuration mistakes as system checks with stable ids.

metrics.W001  OPS_METRICS_TOKEN is set but shorter than 16 characters
metrics.W002  a path in OPS_METRICS_DISK_PATHS does not exist (its disk is not sampled)
metrics.W003  production serves /metrics to anyone (OPS_METRICS_PUBLIC without a token; --deploy)
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register()
def check_metrics_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    problems: list[Any] = []
    token = settings.OPS_METRICS_TOKEN
    if token and len(token) < 16:
        problems.append(
            Warning(
                "OPS_METRICS_TOKEN is shorter than 16 characters.",
                hint="Use a long random value, e.g. `python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'`.",
                id="metrics.W001",
            )
        )
    for path in settings.OPS_METRICS_DISK_PATHS:
        if not os.path.exists(path):
            problems.append(
                Warning(
                    f"OPS_METRICS_DISK_PATHS lists {path!r}, which does not exist.",
                    hint="List mount points that exist on every host, comma-separated.",
                    id="metrics.W002",
                )
            )
    return problems


@register(Tags.security, deploy=True)
def check_metrics_exposure(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    # Route names, error rates and host figures tell an attacker a lot: in production the
    # endpoint needs a token unless an operator opened it on purpose.
    if not getattr(settings, "PRODUCTION", False) or settings.OPS_METRICS_TOKEN:
        return []
    if not settings.OPS_METRICS_PUBLIC:
        return []
    return [
        Warning(
            "/metrics is open to anyone in production (OPS_METRICS_PUBLIC without a token).",
            hint="Set OPS_METRICS_TOKEN and give it to your scraper as a bearer token.",
            id="metrics.W003",
        )
    ]
