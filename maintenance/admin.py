from __future__ import annotations

import secrets
from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import patch_cache_control

from maintenance import state
from maintenance.forms import TAKE_SITE_DOWN_PERMISSION, DownForm, MaintenanceWindowForm
from maintenance.models import MaintenanceRun, MaintenanceState, MaintenanceWindow
from maintenance.services import bring_down, bring_up
from opsconsole.admintools import ReadOnlyAdmin, admin_page
from opsconsole.operations import operation

# Named like a changelist so the admin index links straight to the toggle.
TOGGLE_URL_NAME = "maintenance_maintenancestate_changelist"
VIEW_PERMISSION = "maintenance.view_maintenancestate"


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
        permission=(VIEW_PERMISSION, TAKE_SITE_DOWN_PERMISSION),
        methods=("GET", "HEAD", "POST"),
    )
    def toggle_view(self, request: HttpRequest) -> HttpResponse:
        """The state, and the form to go down or the button to come up. POSTs here are the
        same operations as down/ and up/ (the forms post there)."""
        if request.method == "POST":
            if request.POST.get("action") == "up":
                return self.up_view(request)
            return self.down_view(request)
        return self._page(request, DownForm())

    @admin_page(
        "down/",
        name="maintenance_down",
        permission=(VIEW_PERMISSION, TAKE_SITE_DOWN_PERMISSION),
        methods=("POST",),
    )
    @operation("maintenance.down", TAKE_SITE_DOWN_PERMISSION)
    def down_view(self, request: HttpRequest) -> HttpResponse:
        """Take the site down. A bypass secret (generated, or the operator's own) is shown on
        this response only: it is stored hashed, and never audited, logged or put in a message."""
        form = DownForm(request.POST)
        if not form.is_valid():
            return self._page(request, form, status=400)
        secret = form.cleaned_data["secret"]
        if not secret and form.cleaned_data["generate_secret"]:
            secret = secrets.token_urlsafe(24)
        bring_down(
            message=form.cleaned_data["message"],
            retry_after=form.cleaned_data["retry_after"],
            secret=secret,
            allowed_ips=form.cleaned_data["allowed_ips"],
            actor=request.user,
        )
        messages.success(request, "Maintenance mode is on.")
        if not secret:
            return HttpResponseRedirect(reverse(f"admin:{TOGGLE_URL_NAME}"))
        response = self._page(request, DownForm(), new_secret=secret)
        patch_cache_control(response, no_store=True)
        return response

    @admin_page(
        "up/",
        name="maintenance_up",
        permission=(VIEW_PERMISSION, TAKE_SITE_DOWN_PERMISSION),
        methods=("POST",),
    )
    @operation("maintenance.up", TAKE_SITE_DOWN_PERMISSION)
    def up_view(self, request: HttpRequest) -> HttpResponse:
        bring_up(actor=request.user)
        messages.success(request, "Maintenance mode is off.")
        return HttpResponseRedirect(reverse(f"admin:{TOGGLE_URL_NAME}"))

    def _page(
        self, request: HttpRequest, form: DownForm, *, status: int = 200, new_secret: str = ""
    ) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "Maintenance mode",
            "opts": self.model._meta,
            "state": state.current(fresh=True),
            "row": MaintenanceState.objects.filter(pk=1).first(),
            "form": form,
            "can_change": self.has_change_permission(request),
            "new_secret": new_secret,
            "active_windows": MaintenanceWindow.objects.filter(
                started_notified_at__isnull=False, ended_notified_at__isnull=True
            ),
        }
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
