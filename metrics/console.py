"""The metrics console page: server-drawn SVG charts of measured series (no client library)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.utils import timezone

from metrics.models import ResourceUsage, SlowRequest, ThresholdState
from metrics.rollups import Point, series

WINDOWS = {"1": 1, "6": 6, "24": 24, "168": 168, "720": 720}
WIDTH, HEIGHT = 560, 120
APP_CHARTS = (
    ("response_time_p95_ms", "Response time p95", "ms"),
    ("response_time_p50_ms", "Response time p50", "ms"),
    ("request_rate_per_s", "Requests", "/s"),
    ("error_rate_percent", "Errors (5xx)", "%"),
    ("db_query_time_avg_ms", "Query time (avg)", "ms"),
    ("cache_hit_rate_percent", "Cache hit rate", "%"),
    ("active_users", "Active users", ""),
)
HOST_CHARTS = (
    ("cpu_percent", "CPU", "%"),
    ("memory_percent", "Memory", "%"),
    ("load_1", "Load (1 min)", ""),
)


def polyline(points: list[Point], start: float, end: float) -> dict[str, Any] | None:
    """SVG coordinates of a series; None when nothing was measured in the window."""
    if not points:
        return None
    top = max(p.max for p in points)
    scale = top if top > 0 else 1.0
    span = max(end - start, 1.0)
    xy = [
        ((p.at.timestamp() - start) / span * WIDTH, HEIGHT - p.avg / scale * (HEIGHT - 4) - 2)
        for p in points
    ]
    return {
        "coords": " ".join(f"{x:.1f},{y:.1f}" for x, y in xy),
        # A lone sample is a dot: a one-point polyline draws nothing.
        "dot": xy[0] if len(xy) == 1 else None,
        "latest": points[-1].avg,
        "peak": top,
        "count": len(points),
    }


def metrics_console(request: HttpRequest) -> HttpResponse:
    raw = request.GET.get("hours", "24")
    if raw not in WINDOWS:
        return HttpResponseBadRequest(f"hours must be one of {', '.join(WINDOWS)}")
    hours = WINDOWS[raw]
    end = timezone.now()
    start = end - timedelta(hours=hours)
    hosts = sorted(
        set(
            ResourceUsage.objects.filter(recorded_at__gte=start)
            .values_list("host", flat=True)
            .distinct()
        )
    )
    wanted = [(m, "", "") for m, _, _ in APP_CHARTS]
    wanted += [(m, "", h) for h in hosts for m, _, _ in HOST_CHARTS]
    data = series(wanted, start, end)
    s, e = start.timestamp(), end.timestamp()
    charts = [
        {"title": title, "unit": unit, "line": polyline(data[(m, "", "")], s, e)}
        for m, title, unit in APP_CHARTS
    ]
    host_charts = [
        {
            "host": h,
            "charts": [
                {"title": title, "unit": unit, "line": polyline(data[(m, "", h)], s, e)}
                for m, title, unit in HOST_CHARTS
            ],
        }
        for h in hosts
    ]
    context = {
        **admin.site.each_context(request),
        "title": "Metrics",
        "hours": raw,
        "windows": list(WINDOWS),
        "charts": charts,
        "host_charts": host_charts,
        "width": WIDTH,
        "height": HEIGHT,
        "firing": ThresholdState.objects.exclude(level="ok").order_by("-since")[:20],
        "slow": SlowRequest.objects.filter(created_at__gte=start)[:20],
    }
    return render(request, "metrics/console.html", context)
