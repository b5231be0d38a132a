from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from health import services, timeline
from health.admin_operations import RUN_CHECK_PERMISSION, HealthOperationsMixin
from health.models import (
    ComponentResult,
    ComponentState,
    ExternalService,
    HealthCheck,
    WorkerHeartbeat,
)
from opsconsole import periods
from opsconsole.admintools import (
    ReadOnlyAdmin,
    ReadOnlyInline,
    SuperuserOnlyFieldsMixin,
    admin_page,
)
from opsconsole.http import OutboundURLField, OutboundURLFormMixin


class ComponentResultInline(ReadOnlyInline):
    model = ComponentResult
    fields = ("component", "status", "duration_ms", "output")


@admin.register(HealthCheck)
class HealthCheckAdmin(HealthOperationsMixin, ReadOnlyAdmin):
    """The history of scheduled runs, with uptime per component over 24 h / 7 d / 30 d."""

    list_display = ("created_at", "status", "duration_ms", "trigger", "hostname")
    list_filter = ("status", "trigger", "results__component", "hostname")
    date_hierarchy = "created_at"
    readonly_fields = ("created_at", "status", "duration_ms", "trigger", "hostname", "details")
    inlines = [ComponentResultInline]
    change_list_template = "admin/health/healthcheck/change_list.html"

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> Any:
        extra_context = dict(extra_context or {})
        table = services.uptime()
        extra_context["uptime"] = sorted(table.items())
        extra_context["states"] = list(ComponentState.objects.order_by("component"))
        extra_context["may_run_check"] = request.user.has_perm(RUN_CHECK_PERMISSION)
        return super().changelist_view(request, extra_context=extra_context)

    @admin_page(
        "timeline/", name="health_healthcheck_timeline", permission="health.view_healthcheck"
    )
    def timeline_view(self, request: HttpRequest) -> HttpResponse:
        """Each component's status over the period as coloured segments, with its uptime."""
        try:
            period = periods.parse_period(request.GET.get("period"))
        except periods.BadPeriod as exc:
            return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")
        end = timezone.now()
        context = {
            **self.admin_site.each_context(request),
            "title": "Health timeline",
            "opts": self.model._meta,
            "period": period,
            "periods": list(periods.PERIODS),
            "timeline": timeline.build(end - periods.PERIODS[period], end),
            "states": {s.component: s for s in ComponentState.objects.all()},
        }
        return TemplateResponse(request, "admin/health/healthcheck/timeline.html", context)


class ExternalServiceForm(OutboundURLFormMixin, forms.ModelForm):
    url = OutboundURLField(max_length=500)

    class Meta:
        model = ExternalService
        fields = [
            "name",
            "url",
            "method",
            "expected_status",
            "timeout_seconds",
            "tls_warn_days",
            "critical",
            "verify_tls",
            "allow_private_network",
            "enabled",
        ]


@admin.register(ExternalService)
class ExternalServiceAdmin(SuperuserOnlyFieldsMixin, admin.ModelAdmin):
    form = ExternalServiceForm
    superuser_only_fields = ("allow_private_network",)
    list_display = ("name", "url", "expected_status", "timeout_seconds", "critical", "enabled")
    list_filter = ("enabled", "critical")
    search_fields = ("name", "url")


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ("hostname", "last_seen", "started_at", "pid")
    readonly_fields = ("hostname", "last_seen", "started_at", "pid")
