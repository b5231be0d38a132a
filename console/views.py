"""The dashboard (the admin home) and its live fragment."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from console import dashboard
from opsconsole import periods

# The view permission each card needs (it reads that model).
CARD_PERMISSIONS = {
    "status": "health.view_healthcheck",
    "traffic": "metrics.view_performancemetric",
    "issues": "errors.view_issue",
    "backup": "backups.view_backup",
    "hosts": "metrics.view_resourceusage",
    "workers": "health.view_workerheartbeat",
    "alerts": "alerts.view_alert",
    "maintenance": "maintenance.view_maintenancewindow",
}
# Whoever may see any card may load the live fragment.
LIVE_PERMISSIONS = tuple(CARD_PERMISSIONS.values())


def live_context(request: HttpRequest) -> dict[str, Any]:
    """The cards the viewer may see: what the live fragment renders."""
    now = timezone.now()
    may = {name: request.user.has_perm(perm) for name, perm in CARD_PERMISSIONS.items()}
    status = dashboard.status_card(now) if may["status"] else None
    run = status["last_run"] if status else None
    cards = {
        "status": status,
        "traffic": dashboard.traffic_card(now) if may["traffic"] else None,
        "issues": dashboard.issues_card(now) if may["issues"] else None,
        "backup": dashboard.backup_card(now) if may["backup"] else None,
        "hosts": dashboard.hosts_card(now) if may["hosts"] else None,
        "workers": dashboard.workers_card(now, run) if may["workers"] else None,
        "alerts": dashboard.alerts_card(now) if may["alerts"] else None,
        "maintenance": dashboard.maintenance_card(now) if may["maintenance"] else None,
    }
    return {"now": now, "cards": cards}


def dashboard_view(
    request: HttpRequest, site: admin.AdminSite, extra_context: dict[str, Any] | None = None
) -> HttpResponse:
    try:
        period = periods.parse_period(request.GET.get("period"))
    except periods.BadPeriod as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")
    context = {
        **site.each_context(request),
        "title": "Dashboard",
        "period": period,
        "periods": list(periods.PERIODS),
        **live_context(request),
        **(extra_context or {}),
    }
    if request.user.has_perm(CARD_PERMISSIONS["traffic"]):
        context["charts"] = dashboard.period_charts(period, context["now"])
    return TemplateResponse(request, "console/dashboard.html", context)


def dashboard_live(request: HttpRequest) -> HttpResponse:
    return TemplateResponse(request, "console/dashboard_live.html", live_context(request))
