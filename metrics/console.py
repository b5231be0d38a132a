"""The metrics console page: server-drawn SVG charts of measured series (no client library)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.utils import timezone

from maintenance.markers import chart_markers
from metrics.models import ResourceUsage, SlowRequest, Threshold, ThresholdState
from metrics.rollups import Point, series
from opsconsole import charts

WINDOWS = {"1": 1, "6": 6, "24": 24, "168": 168, "720": 720}
WIDTH, HEIGHT = 560, 160
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


def threshold_lines(metric: str, host: str, rules: list[Threshold]) -> list[charts.Threshold]:
    """The warning and critical levels of the enabled rule for `metric` on `host` (a rule for
    that host wins over the one for every host)."""
    matching = [r for r in rules if r.metric == metric and r.host in (host, "")]
    if not matching:
        return []
    rule = max(matching, key=lambda r: r.host == host)
    return [
        charts.Threshold(value, name, name)
        for value, name in ((rule.warning, "warning"), (rule.critical, "critical"))
        if value is not None
    ]


def _chart(
    data: dict[Any, list[Point]],
    wanted: tuple[str, str, str],
    title: str,
    unit: str,
    window: tuple[datetime, datetime],
    rules: list[Threshold],
    markers: list[tuple[datetime, datetime, str]],
) -> dict[str, Any]:
    metric, _key, host = wanted
    return charts.line_chart(
        data[wanted],
        title=title,
        unit=unit,
        start=window[0],
        end=window[1],
        thresholds=threshold_lines(metric, host, rules),
        markers=markers,
        width=WIDTH,
        height=HEIGHT,
        label=f"{title} {host}".strip(),
    )


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
    rules = list(Threshold.objects.filter(enabled=True))
    markers = chart_markers(start, end)
    window = (start, end)
    app_charts = [
        _chart(data, (m, "", ""), title, unit, window, rules, markers)
        for m, title, unit in APP_CHARTS
    ]
    host_charts = [
        {
            "host": h,
            "charts": [
                _chart(data, (m, "", h), title, unit, window, rules, markers)
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
        "charts": app_charts,
        "host_charts": host_charts,
        "width": WIDTH,
        "height": HEIGHT,
        "firing": ThresholdState.objects.exclude(level="ok").order_by("-since")[:20],
        "slow": SlowRequest.objects.filter(created_at__gte=start)[:20],
    }
    return render(request, "metrics/console.html", context)
