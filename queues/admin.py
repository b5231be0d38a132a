"""The Queues and tasks page and the failed-task list, with retry and discard.

- `admin:queues-overview`: workers, queues and per-task figures (live, every 5 s, from
  `admin:queues-overview-live`) and the latest failures.
- `admin:queues_taskfailure_changelist`: every recorded failure; the actions retry (with a
  confirmation page) and discard need `queues.retry_task` and are written to the audit trail
  (one record per failure, by queues.services; a refused attempt by the console's guard).
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme

from opsconsole import audit
from opsconsole.admintools import AUDIT_LISTED_OBJECTS, AUDITS_ITSELF, ReadOnlyAdmin, admin_page
from queues import live, services, stats
from queues.models import TaskFailure

RETRY_PERMISSION = "queues.retry_task"
VIEW_PERMISSION = "queues.view_taskfailure"
RECENT_FAILURES = 10


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def _back(request: HttpRequest) -> HttpResponseRedirect | None:
    """To the console page the operation was started from (`next`), else the changelist."""
    target = request.POST.get("next", "")
    if target.startswith(reverse("admin:index")) and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return HttpResponseRedirect(target)
    return None


def _record_run(request: HttpRequest, name: str, pks: list[int]) -> None:
    """The action's own record, as the console's guard writes for other actions (written here
    because showing the confirmation page is not a run); each failure then gets its own."""
    audit.record(
        "admin.action",
        actor=request.user,
        target=f"queues.taskfailure: {name} on {len(pks)} objects",
        details={
            "action": name,
            "model": "queues.taskfailure",
            "count": len(pks),
            "objects": [str(pk) for pk in pks[:AUDIT_LISTED_OBJECTS]],
        },
    )


@admin.register(TaskFailure)
class TaskFailureAdmin(ReadOnlyAdmin):
    deletable = False  # retention deletes them; discard keeps the record
    list_display = (
        "failed_at",
        "task_name",
        "queue",
        "exception_type",
        "short_message",
        "state",
        "retries",
        "hostname",
    )
    list_filter = ("state", "queue")
    search_fields = ("task_name", "task_id", "exception_type", "exception_message")
    fields = (
        "task_name",
        "task_id",
        "queue",
        "state",
        "retried_as",
        "handled_by",
        "handled_at",
        "failed_at",
        "retries",
        "hostname",
        "exception_type",
        "exception_message",
        "shown_args",
        "shown_kwargs",
        "arguments_changed",
        "shown_traceback",
    )
    readonly_fields = fields
    actions = ["retry_selected", "discard_selected"]
    change_list_template = "admin/queues/taskfailure/change_list.html"
    change_form_template = "admin/queues/taskfailure/change_form.html"

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(RETRY_PERMISSION)

    @admin.display(description="message")
    def short_message(self, obj: TaskFailure) -> str:
        text = obj.exception_message
        return text if len(text) <= 120 else text[:119] + "…"

    @admin.display(description="arguments (scrubbed)")
    def shown_args(self, obj: TaskFailure) -> str:
        return format_html('<pre class="queues-pre">{}</pre>', _pretty(obj.args))

    @admin.display(description="keyword arguments (scrubbed)")
    def shown_kwargs(self, obj: TaskFailure) -> str:
        return format_html('<pre class="queues-pre">{}</pre>', _pretty(obj.kwargs))

    @admin.display(description="traceback")
    def shown_traceback(self, obj: TaskFailure) -> str:
        return format_html('<pre class="queues-pre">{}</pre>', obj.traceback or "(none)")

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        obj = self.get_object(request, object_id)
        extra = {
            **(extra_context or {}),
            "can_retry": self.has_retry_permission(request),
            "refusal": services.why_not_retriable(obj) if obj is not None else "",
        }
        return super().change_view(request, object_id, form_url, extra)

    # --- operations -------------------------------------------------------------------------
    @admin.action(description="Retry the selected failed tasks", permissions=["retry"])
    def retry_selected(self, request: HttpRequest, queryset: QuerySet[TaskFailure]) -> Any:
        if request.POST.get("post") != "yes":  # Django's confirmation field (delete_selected)
            items = [(f, services.why_not_retriable(f)) for f in queryset.order_by("-failed_at")]
            context = {
                **self.admin_site.each_context(request),
                "title": "Retry failed tasks?",
                "opts": self.model._meta,
                "items": items,
                "retriable": sum(1 for _, why in items if not why),
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/queues/taskfailure/confirm_retry.html", context)
        pks = list(queryset.values_list("pk", flat=True))
        _record_run(request, "retry_selected", pks)
        for pk in pks:
            outcome = services.retry(pk, actor=request.user)
            self.message_user(request, outcome.message, messages.SUCCESS if outcome.ok else
                              messages.WARNING)  # fmt: skip
        return _back(request)

    @admin.action(description="Discard the selected failed tasks", permissions=["retry"])
    def discard_selected(self, request: HttpRequest, queryset: QuerySet[TaskFailure]) -> Any:
        pks = list(queryset.values_list("pk", flat=True))
        _record_run(request, "discard_selected", pks)
        for pk in pks:
            outcome = services.discard(pk, actor=request.user)
            self.message_user(request, outcome.message, messages.SUCCESS if outcome.ok else
                              messages.WARNING)  # fmt: skip
        return _back(request)

    # --- the overview page ------------------------------------------------------------------
    def _overview_context(self, request: HttpRequest) -> dict[str, Any] | HttpResponse:
        try:
            period = stats.parse_period(request.GET.get("period"))
        except stats.BadPeriod as exc:
            return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
        now = timezone.now()
        return {
            "period": period,
            "periods": list(stats.PERIODS),
            "state": live.current(now),
            "tasks": stats.task_stats(period, now),
            "worker_max_age": settings.OPS_HEALTH_WORKER_MAX_AGE,
        }

    @admin_page("overview/", name="queues-overview", permission=VIEW_PERMISSION)
    def overview_view(self, request: HttpRequest) -> HttpResponse:
        context = self._overview_context(request)
        if isinstance(context, HttpResponse):
            return context
        failures = TaskFailure.objects.filter(state=TaskFailure.State.FAILED)
        context.update(
            self.admin_site.each_context(request),
            title="Queues and tasks",
            opts=self.model._meta,
            recent=failures.order_by("-failed_at", "-id")[:RECENT_FAILURES],
            open_failures=failures.count(),
            can_retry=self.has_retry_permission(request),
            action_checkbox_name=ACTION_CHECKBOX_NAME,
        )
        return TemplateResponse(request, "admin/queues/overview.html", context)

    @admin_page("overview/live/", name="queues-overview-live", permission=VIEW_PERMISSION)
    def overview_live_view(self, request: HttpRequest) -> HttpResponse:
        context = self._overview_context(request)
        if isinstance(context, HttpResponse):
            return context
        return TemplateResponse(request, "admin/queues/live.html", context)


setattr(TaskFailureAdmin.retry_selected, AUDITS_ITSELF, True)
setattr(TaskFailureAdmin.discard_selected, AUDITS_ITSELF, True)
