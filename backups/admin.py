"""Backups in the console: read-only records, and a permission-checked, audited verify action."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from backups.admin_operations import (
    OPERATE_PERMISSION,
    RESTORE_PERMISSION,
    BackupOperationsMixin,
)
from backups.management.cli import human_size
from backups.models import Backup
from backups.tasks import verify_latest_backup
from opsconsole import audit
from opsconsole.admintools import ReadOnlyAdmin


@admin.register(Backup)
class BackupAdmin(BackupOperationsMixin, ReadOnlyAdmin):
    list_display = (
        "id",
        "kind",
        "status",
        "started_at",
        "size_display",
        "duration",
        "verified_at",
        "restore_seconds",
        "encrypted",
    )
    list_filter = ("status", "kind", "encrypted")
    search_fields = ("name", "error", "verify_error")
    date_hierarchy = "started_at"
    readonly_fields = [f.name for f in Backup._meta.fields]
    actions = ["verify_selected"]
    # Backups are made by `manage.py backup` or the schedule; retention deletes records
    # together with their artifacts.
    deletable = False
    change_list_template = "admin/backups/backup/change_list.html"
    change_form_template = "admin/backups/backup/change_form.html"

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        extra_context = {
            **(extra_context or {}),
            "may_operate": request.user.has_perm(OPERATE_PERMISSION),
            "kinds": Backup.Kind.choices,
        }
        return super().changelist_view(request, extra_context=extra_context)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> Any:
        extra_context = {
            **(extra_context or {}),
            "may_restore": request.user.has_perm(RESTORE_PERMISSION),
        }
        return super().change_view(request, object_id, form_url, extra_context=extra_context)

    @admin.display(description="size", ordering="size")
    def size_display(self, obj: Backup) -> str:
        return human_size(obj.size)

    def has_operate_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(OPERATE_PERMISSION))

    @admin.action(
        description="Verify selected backups (restore into a scratch database)",
        permissions=["operate"],
    )
    def verify_selected(self, request: HttpRequest, queryset: QuerySet[Backup]) -> None:
        queued = 0
        for backup in queryset.filter(status__in=Backup.RESTORABLE):
            transaction.on_commit(partial(verify_latest_backup.delay, backup.pk))
            audit.record(
                "backup.verify.requested", actor=request.user, target=f"backup {backup.pk}"
            )
            queued += 1
        skipped = queryset.count() - queued
        self.message_user(
            request,
            f"{queued} verification(s) queued"
            + (f"; {skipped} skipped (not completed)" if skipped else ""),
            messages.SUCCESS if queued else messages.WARNING,
        )
