"""The console pages for errors: projects and their DSNs, issues with their latest event,
the 7-day report, and the resolve / ignore / reopen actions (permission-checked, audited)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.core.cache import cache
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from errors import issue_page, services
from errors.issue_filters import (
    BadFilter,
    EnvironmentFilter,
    ReleaseFilter,
    TagFilter,
    check_filters,
    without_empty_filters,
)
from errors.models import (
    ErrorProject,
    ErrorReport,
    InboxEvent,
    Issue,
    ProjectKey,
    SeverityRule,
)
from opsconsole.admintools import ReadOnlyAdmin, admin_page

logger = logging.getLogger("opsconsole.errors")

ACTION_PERMISSION = "errors.resolve_issue"
REPORT_CACHE_KEY = "errors:report:7d"
REPORT_CACHE_SECONDS = 60
IGNORE_CHOICES = {
    "forever": ("forever", None, None),
    "1h": ("for an hour", timedelta(hours=1), None),
    "24h": ("for a day", timedelta(days=1), None),
    "100": ("until 100 more events", None, 100),
}


def cached_report() -> dict[str, Any]:
    """The 7-day report, recomputed at most every REPORT_CACHE_SECONDS: it adds up a week of
    events (1.5 s with a million), and the list is reloaded far more often than that. Without
    a reachable cache it is computed for the request."""
    try:
        report = cache.get(REPORT_CACHE_KEY)
    except Exception:
        logger.warning("the errors report cache could not be read", exc_info=True)
        report = None
    if report is None:
        report = {**services.get_error_report(days=7), "as_of": timezone.now()}
        try:
            cache.set(REPORT_CACHE_KEY, report, REPORT_CACHE_SECONDS)
        except Exception:
            logger.warning("the errors report cache could not be written", exc_info=True)
    return report


class ProjectKeyInline(admin.TabularInline):
    model = ProjectKey
    extra = 0
    fields = ("public_key", "label", "dsn", "created_at", "revoked_at")
    readonly_fields = ("public_key", "dsn", "created_at")

    @admin.display(description="DSN")
    def dsn(self, obj: ProjectKey) -> str:
        return services.dsn_for(obj) if obj.pk else ""


@admin.register(ErrorProject)
class ErrorProjectAdmin(admin.ModelAdmin):
    list_display = ("name", "dsn", "rate_limit_per_minute", "retention_days", "created_at")
    search_fields = ("name",)
    inlines = [ProjectKeyInline]
    fieldsets = [
        (None, {"fields": ("name", "rate_limit_per_minute", "retention_days")}),
        (
            "Quotas",
            {"fields": ("bytes_per_minute", "bytes_per_day", "new_issues_per_hour")},
        ),
        ("Retention", {"fields": ("max_events_per_issue",)}),
        (
            "Alert rules",
            {
                "fields": (
                    "alert_on_critical",
                    "alert_on_new_issue",
                    "alert_on_regression",
                    ("frequency_threshold", "frequency_window_minutes"),
                    "business_hours_alerts",
                    ("business_hours_start", "business_hours_end"),
                    "business_days",
                    "business_timezone",
                )
            },
        ),
    ]

    @admin.display(description="DSN")
    def dsn(self, obj: ErrorProject) -> str:
        key = obj.keys.filter(revoked_at__isnull=True).first()
        return services.dsn_for(key) if key else "(no active key)"

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if not form.instance.keys.exists():
            ProjectKey.objects.create(project=form.instance, label="default")


@admin.register(SeverityRule)
class SeverityRuleAdmin(admin.ModelAdmin):
    list_display = ("pattern", "severity", "position")
    list_editable = ("severity", "position")
    ordering = ("position", "id")


@admin.register(Issue)
class IssueAdmin(ReadOnlyAdmin):
    list_display = ("title", "project", "severity", "status", "count", "first_seen", "last_seen")
    list_filter = ("status", "severity", "project", ReleaseFilter, EnvironmentFilter, TagFilter)
    search_fields = ("title", "culprit", "exception_type", "last_message")
    ordering = ("-last_seen",)
    readonly_fields = [f.name for f in Issue._meta.fields]
    actions = ["resolve_selected", "ignore_selected", "reopen_selected"]
    change_list_template = "admin/errors/issue/change_list.html"
    change_form_template = "admin/errors/issue/change_form.html"
    # Read-only: issues change only through the audited actions below.

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        if not request.user.has_perm(ACTION_PERMISSION):
            for name in ("resolve_selected", "ignore_selected", "reopen_selected"):
                actions.pop(name, None)
        return actions

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        cleaned = without_empty_filters(request.GET)
        if cleaned is not None:
            return HttpResponseRedirect(f"{request.path}?{cleaned}")
        try:
            check_filters(request.GET)
        except BadFilter as exc:
            return TemplateResponse(
                request, "admin/errors/bad_filter.html", {"message": str(exc)}, status=400
            )
        extra = {
            "error_report": cached_report(),
            "filter_values": {k: request.GET.get(k, "") for k in ("release", "environment", "tag")},
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=extra)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> Any:
        issue = self.get_object(request, object_id)
        page: dict[str, Any] = {}
        if issue is not None:
            try:
                page = issue_page.issue_context(issue, request.GET.get("event"))
            except issue_page.BadEventNumber as exc:
                return TemplateResponse(
                    request, "admin/errors/bad_filter.html", {"message": str(exc)}, status=400
                )
        extra = {
            **page,
            "latest": page.get("paging", {}).get("event"),
            "can_act": request.user.has_perm(ACTION_PERMISSION),
            "ignore_choices": [(k, v[0]) for k, v in IGNORE_CHOICES.items()],
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra_context=extra)

    @admin_page(
        "<int:issue_id>/act/<str:verb>/",
        name="errors_issue_act",
        permission=ACTION_PERMISSION,
        methods=("POST",),
    )
    def act_view(self, request: HttpRequest, issue_id: int, verb: str) -> HttpResponse:
        issue = get_object_or_404(Issue, pk=issue_id)
        if verb == "resolve":
            services.resolve_issue(issue, actor=request.user)
        elif verb == "reopen":
            services.reopen_issue(issue, actor=request.user)
        elif verb == "ignore":
            choice = IGNORE_CHOICES.get(request.POST.get("for", "forever"))
            if choice is None:
                return TemplateResponse(request, "admin/errors/bad_action.html", status=400)
            _, delta, more = choice
            until = timezone.now() + delta if delta else None
            services.ignore_issue(issue, actor=request.user, until=until, until_more_events=more)
        else:
            return TemplateResponse(request, "admin/errors/bad_action.html", status=400)
        messages.success(request, f"Issue {verb}d." if verb != "reopen" else "Issue reopened.")
        return HttpResponseRedirect(reverse("admin:errors_issue_change", args=[issue.pk]))

    @admin.action(description="Resolve selected issues", permissions=["resolve"])
    def resolve_selected(self, request: HttpRequest, queryset: QuerySet[Issue]) -> None:
        for issue in queryset:
            services.resolve_issue(issue, actor=request.user)

    @admin.action(description="Ignore selected issues", permissions=["resolve"])
    def ignore_selected(self, request: HttpRequest, queryset: QuerySet[Issue]) -> None:
        for issue in queryset:
            services.ignore_issue(issue, actor=request.user)

    @admin.action(description="Reopen selected issues", permissions=["resolve"])
    def reopen_selected(self, request: HttpRequest, queryset: QuerySet[Issue]) -> None:
        for issue in queryset:
            services.reopen_issue(issue, actor=request.user)

    def has_resolve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(ACTION_PERMISSION)


@admin.register(ErrorReport)
class ErrorReportAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "project", "issue_link", "exception_type", "level", "severity")
    list_filter = ("level", "severity", "project")
    search_fields = ("event_id", "message", "exception_type")
    readonly_fields = [f.name for f in ErrorReport._meta.fields]
    list_select_related = ("project", "issue")

    @admin.display(description="issue")
    def issue_link(self, obj: ErrorReport) -> str:
        url = reverse("admin:errors_issue_change", args=[obj.issue_id])
        return format_html('<a href="{}">{}</a>', url, obj.issue.title[:80])


@admin.register(InboxEvent)
class InboxEventAdmin(ReadOnlyAdmin):
    """Events not digested yet: waiting, being retried, or quarantined after their last
    attempt with the reason. Read-only: the payload is what the client sent."""

    list_display = ("received_at", "project", "event_id", "state", "attempts", "last_error_line")
    list_filter = (("quarantined_at", admin.EmptyFieldListFilter), "project")
    search_fields = ("event_id", "last_error")
    list_select_related = ("project",)
    ordering = ("-id",)
    exclude = ("payload",)
    readonly_fields = [
        "project",
        "event_id",
        "received_at",
        "attempts",
        "available_at",
        "quarantined_at",
        "last_error",
        "payload_size",
    ]

    @admin.display(description="state")
    def state(self, obj: InboxEvent) -> str:
        if obj.quarantined_at:
            return "quarantined"
        return "retrying" if obj.attempts and obj.last_error else "waiting"

    @admin.display(description="last error")
    def last_error_line(self, obj: InboxEvent) -> str:
        return obj.last_error.splitlines()[0][:120] if obj.last_error else ""

    @admin.display(description="payload bytes")
    def payload_size(self, obj: InboxEvent) -> int:
        return len(obj.payload)
