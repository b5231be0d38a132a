from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from opsconsole.models import SystemLog

admin.site.site_header = "Ops Console"
admin.site.site_title = "Ops Console"
admin.site.index_title = "Operations"


@admin.register(SystemLog)
class SystemLogAdmin(admin.ModelAdmin):
    """Read-only: the audit trail cannot be edited or deleted from the console."""

    list_display = ("created_at", "actor_name", "action", "target", "result", "ip_address")
    list_filter = ("action", "result", "actor_name")
    search_fields = ("action", "target", "actor_name", "request_id")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in SystemLog._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
