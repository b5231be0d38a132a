"""Backup operations in the console: back up now, verify the latest backup, restore one.

Back up and verify are queued for the worker (they take minutes to hours). A restore asks
first: a page shows what it will replace and wants the backup's id typed in; only then is it
queued. Restoring needs `backups.restore_backup`, which only the administrator role holds.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from backups import tasks
from backups.catalog import resolve
from backups.database import database_engine, live_db_name
from backups.errors import BackupError
from backups.management.cli import human_size
from backups.models import Backup
from opsconsole import audit
from opsconsole.admintools import admin_page
from opsconsole.models import SystemLog
from opsconsole.operations import operation

OPERATE_PERMISSION = "backups.operate_backup"
RESTORE_PERMISSION = "backups.restore_backup"
VIEW_PERMISSION = "backups.view_backup"
# How many earlier restores of a backup its restore page lists.
RESTORES_LISTED = 5


def _changelist() -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("admin:backups_backup_changelist"))


def restore_plan(backup: Backup) -> dict[str, Any]:
    """What restoring `backup` replaces, read from its record and its manifest in storage.

    "problem" is set (and nothing may be restored) when the backup cannot be used.
    """
    plan: dict[str, Any] = {
        "database": backup.artifact("db") is not None,
        "files": backup.artifact("files") is not None,
        "engine": database_engine(),
        "database_name": live_db_name(),
        "backup_engine": backup.engine,
        "roots": [],
        "row_counts": sorted((backup.row_counts or {}).items()),
        "size": human_size(backup.size),
        "problem": "",
    }
    try:
        _, document = resolve(backup.pk, need="files" if not plan["database"] else "db")
    except BackupError as exc:
        plan["problem"] = str(exc)
        return plan
    roots = (document.get("files") or {}).get("roots") or {}
    plan["roots"] = [
        (label, info.get("path", ""), info.get("files"))
        for label, info in sorted(roots.items())
        if isinstance(info, dict)
    ]
    if plan["database"] and backup.engine and backup.engine != plan["engine"]:
        plan["problem"] = (
            f"backup {backup.pk} holds a {backup.engine} database and this console runs on "
            f"{plan['engine']}: it cannot be restored here"
        )
    return plan


class BackupOperationsMixin:
    """Mixed into BackupAdmin: the pages behind its operation buttons."""

    @admin_page(
        "backup-now/",
        name="backups_backup_now",
        permission=(VIEW_PERMISSION, OPERATE_PERMISSION),
        methods=("POST",),
    )
    @operation("backup.create.requested", OPERATE_PERMISSION)
    def backup_now_view(self, request: HttpRequest) -> HttpResponse:
        kind = request.POST.get("kind", Backup.Kind.FULL)
        if kind not in Backup.Kind.values:
            messages.error(request, f"Unknown backup kind {kind[:20]!r}: choose full, db or files.")
            return _changelist()
        running = Backup.objects.filter(status=Backup.Status.RUNNING).first()
        if running is not None:
            reason = f"backup {running.pk} is still running"
            audit.record(
                "backup.create.requested",
                actor=request.user,
                target=f"backup {running.pk}",
                result=SystemLog.Result.FAILURE,
                details={"kind": kind, "reason": reason},
            )
            messages.error(request, f"Not queued: {reason}. Wait for it to finish.")
            return _changelist()
        actor = request.user.get_username()
        transaction.on_commit(partial(tasks.create_backup.delay, kind, actor))
        audit.record(
            "backup.create.requested", actor=request.user, target="backups", details={"kind": kind}
        )
        messages.success(
            request,
            f"Backup ({Backup.Kind(kind).label}) queued: the worker runs it now; it shows "
            "below as running, then completed or failed.",
        )
        return _changelist()

    @admin_page(
        "verify-latest/",
        name="backups_backup_verify_latest",
        permission=(VIEW_PERMISSION, OPERATE_PERMISSION),
        methods=("POST",),
    )
    @operation("backup.verify.requested", OPERATE_PERMISSION)
    def verify_latest_view(self, request: HttpRequest) -> HttpResponse:
        latest = Backup.objects.latest_restorable()
        if latest is None:
            audit.record(
                "backup.verify.requested",
                actor=request.user,
                target="backups",
                result=SystemLog.Result.FAILURE,
                details={"reason": "no completed backup"},
            )
            messages.error(request, "There is no completed backup to verify: back up first.")
            return _changelist()
        transaction.on_commit(partial(tasks.verify_latest_backup.delay, latest.pk))
        audit.record("backup.verify.requested", actor=request.user, target=f"backup {latest.pk}")
        messages.success(
            request,
            f"Verification of backup {latest.pk} queued: the worker restores it into a scratch "
            "database and checks it; the result shows in the verified columns below.",
        )
        return _changelist()

    @admin_page(
        "<int:backup_id>/restore/",
        name="backups_backup_restore",
        permission=(VIEW_PERMISSION, RESTORE_PERMISSION),
        methods=("GET", "HEAD", "POST"),
    )
    @operation("backup.restore.requested", RESTORE_PERMISSION, target="backup {backup_id}")
    def restore_view(self, request: HttpRequest, backup_id: int) -> HttpResponse:
        """GET: what the restore replaces, and a box to type the id in. POST: with the right
        id typed, queue the restore; with a wrong one, the same page again and nothing done."""
        backup = Backup.objects.filter(pk=backup_id).first()
        if backup is None:
            raise Http404(f"There is no backup {backup_id}.")
        plan = restore_plan(backup)
        error = ""
        if request.method == "POST" and not plan["problem"] and backup.is_restorable:
            typed = request.POST.get("confirm_id", "").strip()
            if typed == str(backup.pk):
                return self._queue_restore(request, backup, plan)
            error = f"You typed {typed[:40]!r}, not {backup.pk}: nothing was restored."
        context = {
            **self.admin_site.each_context(request),  # type: ignore[attr-defined]
            "title": f"Restore backup {backup.pk}?",
            "opts": Backup._meta,
            "backup": backup,
            "plan": plan,
            "error": error,
            "restores": SystemLog.objects.filter(
                action__startswith="backup.restore", target=f"backup {backup.pk}"
            ).order_by("-created_at")[:RESTORES_LISTED],
        }
        status = 400 if request.method == "POST" else 200
        return TemplateResponse(request, "admin/backups/restore.html", context, status=status)

    def _queue_restore(
        self, request: HttpRequest, backup: Backup, plan: dict[str, Any]
    ) -> HttpResponse:
        actor = request.user.get_username()
        transaction.on_commit(
            partial(tasks.restore_backup.delay, backup.pk, actor, bool(plan["files"]))
        )
        audit.record(
            "backup.restore.requested",
            actor=request.user,
            target=f"backup {backup.pk}",
            details={"database": plan["database_name"], "files": bool(plan["files"])},
        )
        messages.warning(
            request,
            f"Restore of backup {backup.pk} queued. The site goes into maintenance mode while "
            "it runs; its outcome is listed on this page (reload it). Your session may end if "
            "the backup predates it: then sign in again.",
        )
        return HttpResponseRedirect(reverse("admin:backups_backup_restore", args=[backup.pk]))
