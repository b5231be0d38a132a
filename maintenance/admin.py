from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from maintenance import state
from maintenance.forms import TAKE_SITE_DOWN_PERMISSION, DownForm, MaintenanceWindowForm
from maintenance.models import MaintenanceRun, MaintenanceState, MaintenanceWindow
from maintenance.services import bring_down, bring_up
from opsconsole.admintools import ReadOnlyAdmin, admin_page

# Named like a changelist so the admin index links straight to the toggle.
TOGGLE_URL_NAME = "maintenance_maintenancestate_changelist"


@admin.register(MaintenanceState)
class MaintenanceStateAdmin(admin.ModelAdmin):
    """The console toggle: one page showing the state with a button to go down or up."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    pages_only = True  # the toggle replaces the changelist and change form

    @admin_page(
        "",
        name=TOGGLE_URL_NAME,
        # Django's view permission: either of the two.
        permission=("maintenance.view_maintenancestate", "maintenance.change_maintenancestate"),
        methods=("GET", "HEAD", "POST"),
    )
    def toggle_view(self, request: HttpRequest) -> HttpResponse:
        can_change = self.has_change_permission(request)
        form = DownForm()
        if request.method == "POST":
            if not can_change:
                raise PermissionDenied
            if request.POST.get("action") == "up":
                bring_up(actor=request.user)
                messages.success(request, "Maintenance mode is off.")
                return HttpResponseRedirect(reverse(f"admin:{TOGGLE_URL_NAME}"))
            form = DownForm(request.POST)
            if form.is_valid():
                bring_down(
                    message=form.cleaned_data["message"],
                    retry_after=form.cleaned_data["retry_after"],
                    secret=form.cleaned_data["secret"],
                    allowed_ips=form.cleaned_data["allowed_ips"],
                    actor=request.user,
                )
                messages.success(request, "Maintenance mode is on.")
                return HttpResponseRedirect(reverse(f"admin:{TOGGLE_URL_NAME}"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Maintenance mode",
            "opts": self.model._meta,
            "state": state.current(fresh=True),
            "row": MaintenanceState.objects.filter(pk=1).first(),
            "form": form,
            "can_change": can_change,
            "active_windows": MaintenanceWindow.objects.filter(
                started_notified_at__isnull=False, ended_notified_at__isnull=True
            ),
        }
        status = 400 if request.method == "POST" else 200
        return TemplateResponse(request, "admin/maintenance/toggle.html", context, status=status)


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(admin.ModelAdmin):
    form = MaintenanceWindowForm
    list_display = (
        "starts_at",
        "ends_at",
        "message",
        "enable_maintenance_mode",
        "started_notified_at",
        "ended_notified_at",
    )
    list_filter = ("enable_maintenance_mode",)
    search_fields = ("message",)
    readonly_fields = ("started_notified_at", "ended_notified_at", "created_by", "created_at")

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        may = request.user.has_perm(TAKE_SITE_DOWN_PERMISSION)
        return type(form.__name__, (form,), {"may_take_site_down": may})

    def save_model(
        self, request: HttpRequest, obj: MaintenanceWindow, form: Any, change: bool
    ) -> None:
        if not change:
            obj.created_by = request.user.get_username()
        super().save_model(request, obj, form, change)


@admin.register(MaintenanceRun)
class MaintenanceRunAdmin(ReadOnlyAdmin):
    """Read-only history of upkeep steps."""

    list_display = ("started_at", "kind", "step", "status", "duration_ms", "triggered_by")
    list_filter = ("kind", "status", "step")
    search_fields = ("run_id", "step", "error")
    date_hierarchy = "started_at"
    readonly_fields = [f.name for f in MaintenanceRun._meta.fields]
    deletable = False
