"""The alerts console: channels (with a test action), firing and recent alerts, silences,
notifications and the delivery log."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from opsconsole import audit
from opsconsole.admintools import ReadOnlyAdmin, ReadOnlyInline, SuperuserOnlyFieldsMixin
from opsconsole.http import OutboundURLField, OutboundURLFormMixin

from . import services
from .admin_operations import SILENCE_ACTIONS, AlertOperationsMixin
from .models import Alert, Channel, Delivery, Notification, Silence


class ChannelForm(OutboundURLFormMixin, forms.ModelForm):
    url = OutboundURLField(
        required=False, max_length=1000, help_text="Slack or webhook: target URL"
    )

    class Meta:
        model = Channel
        fields = [
            "name",
            "type",
            "enabled",
            "min_severity",
            "key_prefixes",
            "recipients",
            "url",
            "secret",
            "allow_private",
            "send_resolved",
        ]


@admin.register(Channel)
class ChannelAdmin(SuperuserOnlyFieldsMixin, admin.ModelAdmin):
    form = ChannelForm
    superuser_only_fields = ("allow_private",)
    list_display = ("name", "type", "enabled", "min_severity", "key_prefixes", "send_resolved")
    list_filter = ("type", "enabled", "min_severity")
    search_fields = ("name",)
    actions = ["send_test_notification"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_fields(request, obj))
        # The signing secret and the URL (a Slack webhook URL is itself a credential) are
        # shown only to those who may change the channel: a view-only operator sees neither.
        if obj is not None and not self.has_change_permission(request, obj):
            fields = [f for f in fields if f not in ("secret", "url")]
        return fields

    @admin.action(description="Send a test notification", permissions=["change"])
    def send_test_notification(self, request: HttpRequest, queryset: QuerySet[Channel]) -> None:
        for channel in queryset:
            delivery = services.send_test_notification(channel)
            ok = delivery.status == Delivery.Status.DELIVERED
            audit.record(
                "alerts.test_notification",
                actor=request.user,
                target=f"alerts.channel:{channel.pk} {channel.name}",
                result="success" if ok else "failure",
                details={"delivery": delivery.pk, "status": delivery.status},
            )
            if ok:
                self.message_user(request, f"{channel.name}: test notification delivered.")
            else:
                detail = delivery.error or delivery.status
                self.message_user(
                    request,
                    f"{channel.name}: test notification not delivered ({detail}).",
                    level=messages.ERROR,
                )


class FiringFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "show"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("firing", "Firing"),
            ("suppressed", "Firing, suppressed"),
            ("recent", "Resolved in the last 24 h"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Alert]) -> QuerySet[Alert]:
        value = self.value()
        if value == "firing":
            return queryset.filter(state=Alert.State.FIRING)
        if value == "suppressed":
            return queryset.filter(state=Alert.State.FIRING).exclude(suppressed_by="")
        if value == "recent":
            since = timezone.now() - timedelta(hours=24)
            return queryset.filter(state=Alert.State.RESOLVED, resolved_at__gte=since)
        return queryset


@admin.register(Alert)
class AlertAdmin(AlertOperationsMixin, ReadOnlyAdmin):
    list_display = (
        "key",
        "state",
        "severity",
        "summary",
        "occurrences",
        "first_fired_at",
        "last_fired_at",
        "last_notified_at",
        "resolved_at",
        "suppressed_by",
    )
    list_filter = (FiringFilter, "severity", "kind")
    search_fields = ("key", "summary")
    date_hierarchy = "last_fired_at"
    change_form_template = "admin/alerts/alert/change_form.html"
    actions = SILENCE_ACTIONS


@admin.register(Silence)
class SilenceAdmin(admin.ModelAdmin):
    list_display = ("pattern", "starts_at", "ends_at", "reason", "created_by", "active")
    search_fields = ("pattern", "reason")
    readonly_fields = ("created_by", "created_at")

    @admin.display(boolean=True)
    def active(self, obj: Silence) -> bool:
        return obj.is_active()

    def save_model(self, request: HttpRequest, obj: Silence, form: Any, change: bool) -> None:
        if not change and obj.created_by_id is None:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)


class DeliveryInline(ReadOnlyInline):
    model = Delivery
    fields = ("channel", "status", "attempts", "response_code", "error", "delivered_at")


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "kind", "status", "created_at", "send_at", "sent_at", "is_test")
    list_filter = ("status", "kind", "is_test")
    inlines = [DeliveryInline]


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "channel",
        "notification",
        "status",
        "attempts",
        "response_code",
        "error",
        "next_attempt_at",
        "delivered_at",
        "duration_ms",
    )
    list_filter = ("status", "channel")
    list_select_related = ("channel", "notification")
    date_hierarchy = "created_at"
