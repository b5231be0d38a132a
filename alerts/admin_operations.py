"""Alert operations in the console: silence an alert's key for 1, 4 or 24 hours, from the
alert's page (a button per duration) or from the list (an action per duration)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from opsconsole import audit
from opsconsole.admintools import admin_page
from opsconsole.models import SystemLog
from opsconsole.operations import operation

from . import services
from .models import Alert

SILENCE_PERMISSION = "alerts.add_silence"


def _silence(request: HttpRequest, alert: Alert, hours: int) -> bool:
    """Silence one alert, audit it and say so; False when refused (the key cannot be silenced)."""
    try:
        silence = services.silence_alert(alert, hours=hours, actor=request.user)
    except ValueError as exc:
        audit.record(
            "alerts.silence",
            actor=request.user,
            target=alert.key,
            result=SystemLog.Result.FAILURE,
            details={"alert": alert.pk, "hours": hours, "reason": str(exc)},
        )
        messages.error(request, f"{alert.key}: {exc}.")
        return False
    audit.record(
        "alerts.silence",
        actor=request.user,
        target=alert.key,
        details={"alert": alert.pk, "hours": hours, "silence": silence.pk},
    )
    messages.success(
        request, f"{alert.key} is silenced until {silence.ends_at:%Y-%m-%d %H:%M %Z} ({hours} h)."
    )
    return True


def _silence_action(hours: int) -> Any:
    @admin.action(description=f"Silence the selected alerts for {hours} h", permissions=["silence"])
    def action(model_admin: Any, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        for alert in queryset:
            _silence(request, alert, hours)

    # The site's guarded action records the run (admin.action); _silence adds one record per
    # alert with the silence it made.
    action.__name__ = f"silence_{hours}h"
    return action


# AlertAdmin's actions: one per duration.
SILENCE_ACTIONS = [_silence_action(hours) for hours in services.SILENCE_HOURS]


class AlertOperationsMixin:
    """Mixed into AlertAdmin: silence buttons on an alert's page, and the permission its
    silence actions (SILENCE_ACTIONS) need."""

    def has_silence_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(SILENCE_PERMISSION))

    @admin_page(
        "<int:alert_id>/silence/",
        name="alerts_alert_silence",
        permission=("alerts.view_alert", SILENCE_PERMISSION),
        methods=("POST",),
    )
    @operation("alerts.silence", SILENCE_PERMISSION, target="alert {alert_id}")
    def silence_view(self, request: HttpRequest, alert_id: int) -> HttpResponse:
        alert = Alert.objects.filter(pk=alert_id).first()
        if alert is None:
            raise Http404(f"There is no alert {alert_id}.")
        try:
            hours = int(request.POST.get("hours", ""))
        except ValueError:
            hours = 0
        if hours not in services.SILENCE_HOURS:
            messages.error(
                request,
                f"Silence for {', '.join(map(str, services.SILENCE_HOURS))} hours only.",
            )
        else:
            _silence(request, alert, hours)
        return HttpResponseRedirect(reverse("admin:alerts_alert_change", args=[alert.pk]))

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> Any:
        extra_context = {
            **(extra_context or {}),
            "may_silence": self.has_silence_permission(request),
            "silence_hours": services.SILENCE_HOURS,
        }
        return super().change_view(  # type: ignore[misc]
            request, object_id, form_url, extra_context=extra_context
        )
