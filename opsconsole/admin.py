from __future__ import annotations

from typing import Any

from axes import admin as axes_admin
from axes.handlers.proxy import AxesProxyHandler
from axes.models import AccessAttempt
from django.contrib import admin
from django.contrib.admin.actions import delete_selected
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django_otp.plugins.otp_totp import admin as totp_admin
from django_otp.plugins.otp_totp.models import TOTPDevice

from opsconsole import audit
from opsconsole.admintools import AUDITS_ITSELF, ReadOnlyAdmin
from opsconsole.models import SystemLog

# How many deleted objects a bulk-deletion audit record names one by one.
BULK_DELETE_LISTED = 100


@admin.action(
    permissions=["delete"],
    description=delete_selected.short_description,  # type: ignore[attr-defined]
)
def audited_delete_selected(
    modeladmin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Any]
) -> Any:
    """Django's bulk delete, also written to the audit trail.

    Django logs a bulk deletion with one bulk INSERT of LogEntry rows, which sends no
    post_save, so the receiver that mirrors admin changes never sees it. A single object's
    entry is saved on its own and is already recorded.
    """
    total = queryset.count()
    listed = [(obj.pk, str(obj)[:100]) for obj in queryset[:BULK_DELETE_LISTED]]
    result = delete_selected(modeladmin, request, queryset)
    if result is None and total > 1:  # None: confirmed and deleted
        opts = modeladmin.model._meta
        audit.record(
            "admin.bulk_delete",
            actor=request.user,
            target=f"{opts.app_label}.{opts.model_name}: {total} objects",
            details={
                "count": total,
                "objects": [{"id": str(pk), "repr": text} for pk, text in listed],
            },
        )
    return result


# Its records above (and the LogEntry of a single deletion) are the audit trail of this action.
setattr(audited_delete_selected, AUDITS_ITSELF, True)

# Replaces the site-wide action of the same name for every ModelAdmin, third-party ones too.
admin.site.add_action(audited_delete_selected, "delete_selected")


@admin.register(SystemLog)
class SystemLogAdmin(ReadOnlyAdmin):
    """Read-only: the audit trail cannot be edited or deleted from the console."""

    list_display = ("created_at", "actor_name", "action", "target", "result", "ip_address")
    list_filter = ("action", "result", "actor_name")
    search_fields = ("action", "target", "actor_name", "request_id")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in SystemLog._meta.fields]
    deletable = False


class AccessAttemptAdmin(axes_admin.AccessAttemptAdmin):
    """django-axes' login-attempt records, with its clean-up action made to work."""

    @admin.action(
        description=axes_admin.AccessAttemptAdmin.cleanup_expired_attempts.short_description
    )
    def cleanup_expired_attempts(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        # Its handler measures expiry from the request's attempt time, which django-axes only
        # sets on login requests: without it the action fails with an AttributeError.
        AxesProxyHandler.update_request(request)
        super().cleanup_expired_attempts(request, queryset)


if admin.site.is_registered(AccessAttempt):
    admin.site.unregister(AccessAttempt)
    admin.site.register(AccessAttempt, AccessAttemptAdmin)


class TOTPDeviceAdmin(totp_admin.TOTPDeviceAdmin):
    """django-otp's TOTP devices; a device's secret (its key, QR code and config URL) is shown
    to its own user only, so a view permission cannot be used to copy someone's second factor."""

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or obj.user_id == request.user.pk:
            return fieldsets
        secret = {"key", "qrcode_link"}
        return [
            (name, {**opts, "fields": [f for f in opts["fields"] if f not in secret]})
            for name, opts in fieldsets
        ]

    def get_list_display(self, request: HttpRequest) -> Any:
        return [f for f in super().get_list_display(request) if f != "qrcode_link"]

    def config_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        self._own_device_only(request, pk)
        return super().config_view(request, pk)

    def qrcode_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        self._own_device_only(request, pk)
        return super().qrcode_view(request, pk)

    def _own_device_only(self, request: HttpRequest, pk: int) -> None:
        device = get_object_or_404(TOTPDevice, pk=pk)
        if device.user_id != request.user.pk:
            raise PermissionDenied


if admin.site.is_registered(TOTPDevice):
    admin.site.unregister(TOTPDevice)
admin.site.register(TOTPDevice, TOTPDeviceAdmin)
