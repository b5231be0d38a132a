"""Health operations in the console: run every check now (on the health check runs page)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from health import services
from health.models import Status
from opsconsole import audit
from opsconsole.admintools import admin_page
from opsconsole.operations import operation

RUN_CHECK_PERMISSION = "health.run_check"


class HealthOperationsMixin:
    """Mixed into HealthCheckAdmin: the "Run a health check now" button's POST."""

    @admin_page(
        "run/",
        name="health_healthcheck_run",
        permission=("health.view_healthcheck", RUN_CHECK_PERMISSION),
        methods=("POST",),
    )
    @operation("health.run_check", RUN_CHECK_PERMISSION)
    def run_check_view(self, request: HttpRequest) -> HttpResponse:
        """Runs every check in this request (each probe has its own timeout), stores the run
        like a scheduled one, and shows it."""
        try:
            run = services.perform_health_check(trigger="console")
        except Exception as exc:
            audit.record(
                "health.run_check",
                actor=request.user,
                result="failure",
                details={"error": type(exc).__name__},
            )
            messages.error(request, f"The health check could not run: {type(exc).__name__}.")
            return HttpResponseRedirect(reverse("admin:health_healthcheck_changelist"))
        failing = sorted(c for c, d in run.details.items() if d.get("status") == Status.FAIL)
        warning = sorted(c for c, d in run.details.items() if d.get("status") == Status.WARN)
        audit.record(
            "health.run_check",
            actor=request.user,
            target=f"health check run {run.pk}",
            details={"status": run.status, "failing": failing, "warning": warning},
        )
        summary = f"Health check run {run.pk}: {run.status} in {run.duration_ms:.0f} ms"
        if failing:
            messages.error(request, f"{summary}; failing: {', '.join(failing)}.")
        elif warning:
            messages.warning(request, f"{summary}; warning: {', '.join(warning)}.")
        else:
            messages.success(request, f"{summary}; every component passes.")
        return HttpResponseRedirect(reverse("admin:health_healthcheck_change", args=[run.pk]))
