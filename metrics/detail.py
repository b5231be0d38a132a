"""The metrics detail pages: routes, slow requests and queries, tasks, and the reports.

Each page takes ?period= (1h, 6h, 24h, 7d, 30d) and answers 400 to anything else; the tables
that sort take ?sort= with a whitelisted column. The figures come from metrics.figures and
metrics.reports, which the commands and the API use too.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.utils import timezone

from metrics import figures
from metrics.models import SlowRequest
from metrics.reports import get_performance_report, get_resource_report

PERIODS = {"1h": 1, "6h": 6, "24h": 24, "7d": 24 * 7, "30d": 24 * 30}
DEFAULT_PERIOD = "24h"
TABS = (
    ("metrics-console", "Charts"),
    ("metrics-routes", "Routes"),
    ("metrics-slow", "Slow requests and queries"),
    ("metrics-tasks", "Tasks"),
    ("metrics-reports", "Reports"),
)
SLOW_REQUESTS_SHOWN = 50
View = Callable[[HttpRequest], HttpResponse]


class BadRequest(ValueError):
    """A query parameter the page cannot use; its message is shown to the person."""


def period_of(request: HttpRequest) -> tuple[str, datetime, datetime]:
    raw = request.GET.get("period", DEFAULT_PERIOD)
    if raw not in PERIODS:
        raise BadRequest(f"period must be one of {', '.join(PERIODS)}")
    end = timezone.now()
    return raw, end - timedelta(hours=PERIODS[raw]), end


def _page(request: HttpRequest, template: str, tab: str, title: str, build: Any) -> HttpResponse:
    """Renders a detail page; `build(period, start, end)` returns its context."""
    try:
        period, start, end = period_of(request)
        context = build(period, start, end)
    except BadRequest as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")
    return render(
        request,
        template,
        {
            **admin.site.each_context(request),
            "title": title,
            "tabs": TABS,
            "tab": tab,
            "period": period,
            "periods": list(PERIODS),
            "start": start,
            "end": end,
            **context,
        },
    )


def _sort(request: HttpRequest, default: str, columns: tuple[str, ...]) -> str:
    sort = request.GET.get("sort", default)
    if sort.removeprefix("-") not in columns:
        raise BadRequest(f"sort must be one of {', '.join(columns)} (with - for descending)")
    return sort


def _headers(sort: str, columns: tuple[str, ...], labels: dict[str, str]) -> list[dict[str, str]]:
    """Column headers that sort: a second click on the sorted column reverses it."""
    heads = []
    for column in columns:
        active = sort.removeprefix("-") == column
        descending = sort.startswith("-")
        if active:
            next_sort = column if descending else f"-{column}"
        else:
            next_sort = column if column in ("route", "task") else f"-{column}"
        heads.append(
            {
                "label": labels[column],
                "sort": next_sort,
                "aria": ("descending" if descending else "ascending") if active else "none",
            }
        )
    return heads


ROUTE_LABELS = {
    "route": "route",
    "rpm": "requests / min",
    "p50": "p50 ms",
    "p95": "p95 ms",
    "p99": "p99 ms",
    "error_rate": "5xx %",
    "queries": "queries / request",
    "query_ms": "query ms / request",
}
TASK_LABELS = {
    "task": "task",
    "runs": "runs",
    "failure_rate": "failed %",
    "runtime_avg": "runtime avg ms",
    "runtime_p95": "runtime p95 ms",
    "wait_p95": "wait p95 ms",
}


def routes_page(request: HttpRequest) -> HttpResponse:
    def build(period: str, start: datetime, end: datetime) -> dict[str, Any]:
        sort = _sort(request, "-rpm", figures.ROUTE_COLUMNS)
        return {
            "sort": sort,
            "headers": _headers(sort, figures.ROUTE_COLUMNS, ROUTE_LABELS),
            "rows": figures.route_table(start, end, sort),
        }

    return _page(request, "metrics/detail_routes.html", "metrics-routes", "Routes", build)


def slow_page(request: HttpRequest) -> HttpResponse:
    def build(period: str, start: datetime, end: datetime) -> dict[str, Any]:
        window = SlowRequest.objects.filter(created_at__gte=start, created_at__lt=end)
        return {
            "slow_count": window.count(),
            "slow_requests": window.order_by("-duration_ms")[:SLOW_REQUESTS_SHOWN],
            "shown": SLOW_REQUESTS_SHOWN,
            "query_groups": figures.slow_query_groups(start, end),
        }

    return _page(
        request, "metrics/detail_slow.html", "metrics-slow", "Slow requests and queries", build
    )


def tasks_page(request: HttpRequest) -> HttpResponse:
    def build(period: str, start: datetime, end: datetime) -> dict[str, Any]:
        sort = _sort(request, "-runtime_p95", figures.TASK_COLUMNS)
        return {
            "sort": sort,
            "headers": _headers(sort, figures.TASK_COLUMNS, TASK_LABELS),
            "rows": figures.task_table(start, end, sort),
        }

    return _page(request, "metrics/detail_tasks.html", "metrics-tasks", "Tasks", build)


def reports_page(request: HttpRequest) -> HttpResponse:
    def build(period: str, start: datetime, end: datetime) -> dict[str, Any]:
        hours = PERIODS[period]
        performance = get_performance_report(hours, now=end)
        resources = get_resource_report(hours, now=end)
        hosts = [
            {
                "host": host,
                "metrics": sorted(entry["metrics"].items()),
                "disks": sorted(entry["disks"].items()),
                "forecasts": figures.forecasts(entry),
            }
            for host, entry in resources["hosts"].items()
        ]
        return {
            "app_metrics": sorted(performance["metrics"].items()),
            "keyed": sorted(
                (metric, sorted(by_key.items())) for metric, by_key in performance["by_key"].items()
            ),
            "hosts": hosts,
        }

    return _page(request, "metrics/detail_reports.html", "metrics-reports", "Reports", build)
