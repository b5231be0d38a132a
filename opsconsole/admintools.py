"""Pieces every app's ModelAdmins share, and the console's admin site.

- `ReadOnlyAdmin` / `ReadOnlyInline`: recorded data, viewable and never added or edited by hand.
- `admin_page`: the one way to mount a custom console page, on a ModelAdmin (its `get_urls()` is
  built from the pages it declares) or as a plain view (`guarded_page`); either way the view runs
  behind the site's `admin_view` (login, staff, OTP) and a declared permission.

The site wraps every ModelAdmin registered on it, third-party ones included (django-celery-beat,
django-celery-results, django.contrib.auth), so that each admin action
- needs a permission: its `allowed_permissions`, or "change" when it declares none (Django
  itself lets anyone who may view a changelist run an action that declares none);
- is written to the audit trail when it runs, and when it is refused.
Changes made through change forms, add and delete are recorded from Django's LogEntry rows
(opsconsole.receivers).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.views.decorators.http import require_http_methods
from django_otp.admin import OTPAdminAuthenticationForm, _admin_template_for_django_version

from opsconsole import audit

# What an action that declares no `allowed_permissions` needs: it changes data.
DEFAULT_ACTION_PERMISSIONS = ("change",)
# How many selected objects an audit record names one by one.
AUDIT_LISTED_OBJECTS = 100
# Set on an action that writes its own audit records (so it is not recorded twice).
AUDITS_ITSELF = "ops_audits_itself"

Action = Callable[[Any, HttpRequest, QuerySet[Any]], Any]
View = Callable[..., HttpResponse]
# Set on a ModelAdmin method that `admin_page` declares as a page.
PAGE_ATTRIBUTE = "ops_admin_page"


class ReadOnlyAdmin(admin.ModelAdmin):
    """Recorded data: viewable, never added or edited by hand.

    `deletable = False` also keeps rows that something else owns (retention deletes them, or they
    are the audit trail) from being deleted here.
    """

    deletable = True

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.deletable and super().has_delete_permission(request, obj)


class ReadOnlyInline(admin.TabularInline):
    """The rows of a read-only record's parts: shown, never added, edited or deleted."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields or ()

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def guarded_page(
    view: View,
    permission: str | tuple[str, ...],
    *,
    methods: tuple[str, ...] = ("GET", "HEAD"),
    site: admin.AdminSite | None = None,
    forbid_non_staff: bool = False,
) -> View:
    """`view` as a console page: the site's `admin_view` (login, staff, OTP), then `permission`
    (a tuple: any one of them).

    A signed-in user who is not staff is sent to the admin login like everywhere in the admin;
    with `forbid_non_staff` (for a page outside /admin/) refused with a 403 instead.
    """

    needed = (permission,) if isinstance(permission, str) else permission

    @functools.wraps(view)
    def check_permission(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not any(request.user.has_perm(name) for name in needed):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    inner = (site or admin.site).admin_view(require_http_methods(list(methods))(check_permission))
    if not forbid_non_staff:
        return inner

    @functools.wraps(view)
    def page(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if user.is_authenticated and not (user.is_active and user.is_staff):
            raise PermissionDenied
        return inner(request, *args, **kwargs)

    return page


def admin_page(
    route: str,
    *,
    name: str,
    permission: str | tuple[str, ...],
    methods: tuple[str, ...] = ("GET", "HEAD"),
) -> Callable[[View], View]:
    """Declares a ModelAdmin method as a custom page of its model, mounted by `AdminPagesMixin`.

    `permission` is a full permission name ("app.codename"), or a tuple of them of which any one
    suffices; the page is answered only to staff who hold it. `methods` are the HTTP methods it
    accepts (others get a 405).
    """

    def declare(method: View) -> View:
        setattr(method, PAGE_ATTRIBUTE, (route, name, permission, tuple(methods)))
        return method

    return declare


class AdminPagesMixin:
    """Mounts the pages a ModelAdmin declares with `admin_page` before its own URLs.

    `pages_only = True` mounts only those pages (a model shown as one custom page).
    """

    pages_only = False

    def get_urls(self) -> list[URLPattern]:
        pages = []
        for attr in dir(type(self)):
            declared = getattr(getattr(type(self), attr, None), PAGE_ATTRIBUTE, None)
            if declared is None:
                continue
            route, name, permission, methods = declared
            view = guarded_page(
                getattr(self, attr),
                permission,
                methods=methods,
                site=self.admin_site,  # type: ignore[attr-defined]
            )
            pages.append(path(route, view, name=name))
        if self.pages_only:
            return pages
        return [*pages, *super().get_urls()]  # type: ignore[misc]


class SuperuserOnlyFieldsMixin:
    """Fields only a superuser may set: others see them read-only and cannot post them.

    For switches that lift a safety guard for the whole installation, such as letting
    outbound HTTP reach private addresses (the cloud metadata service, the database).
    """

    superuser_only_fields: tuple[str, ...] = ()

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))  # type: ignore[misc]
        if not request.user.is_superuser:
            fields += [f for f in self.superuser_only_fields if f not in fields]
        return fields


def action_permissions(func: Any) -> tuple[str, ...]:
    return tuple(getattr(func, "allowed_permissions", None) or DEFAULT_ACTION_PERMISSIONS)


def may_run(model_admin: Any, request: HttpRequest, func: Any) -> bool:
    # Django's rule for `allowed_permissions`: any one of them suffices.
    return any(
        getattr(model_admin, f"has_{name}_permission")(request) for name in action_permissions(func)
    )


def _label(model_admin: Any) -> str:
    opts = model_admin.model._meta
    return f"{opts.app_label}.{opts.model_name}"


def _record(model_admin: Any, request: HttpRequest, name: str, result: str, **details: Any) -> None:
    count = details.get("count")
    target = f"{_label(model_admin)}: {name}" + (
        f" on {count} objects" if count is not None else ""
    )
    audit.record(
        "admin.action",
        actor=request.user,
        target=target,
        result=result,
        details={"action": name, "model": _label(model_admin), **details},
    )


def guarded_action(func: Action, name: str) -> Action:
    """`func`, refused without its permission and recorded in the audit trail when it runs."""

    @functools.wraps(func)
    def run(model_admin: Any, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        if not may_run(model_admin, request, func):
            _record(model_admin, request, name, "denied", needs=list(action_permissions(func)))
            raise PermissionDenied
        if getattr(func, AUDITS_ITSELF, False):
            return func(model_admin, request, queryset)
        count = queryset.count()
        objects = [str(pk) for pk in queryset.values_list("pk", flat=True)[:AUDIT_LISTED_OBJECTS]]
        try:
            response = func(model_admin, request, queryset)
        except Exception as exc:
            _record(
                model_admin, request, name, "failure",
                count=count, objects=objects, error=type(exc).__name__,
            )  # fmt: skip
            raise
        _record(model_admin, request, name, "success", count=count, objects=objects)
        return response

    return run


def _posted_action(request: HttpRequest) -> str:
    """The action a changelist POST asks for (the form whose button was pressed)."""
    names = request.POST.getlist("action")
    try:
        index = int(request.POST.get("index", 0))
    except ValueError:
        index = 0
    return names[index] if 0 <= index < len(names) else ""


class GuardedActionsMixin:
    """Mixed into every ModelAdmin the console's site registers (see OpsAdminSite.register)."""

    def get_actions(self, request: HttpRequest) -> dict[str, tuple[Action, str, str]]:
        actions = super().get_actions(request)  # type: ignore[misc]
        return {
            key: (guarded_action(func, name), name, description)
            for key, (func, name, description) in actions.items()
            if may_run(self, request, func)
        }

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        # An action the user may not run is not offered, and Django would answer its POST with
        # the changelist; refuse it openly instead, and record the attempt.
        if request.method == "POST" and "index" in request.POST and "_save" not in request.POST:
            name = _posted_action(request)
            known = {n for _, n, _ in self._get_base_actions()}  # type: ignore[attr-defined]
            if name in known and name not in self.get_actions(request):
                _record(self, request, name, "denied")
                raise PermissionDenied
        return super().changelist_view(request, extra_context)  # type: ignore[misc]


# The navigation sidebar's areas, in order: an area lists the models of its apps (and of the
# single models named "app_label.model_name"), each still filtered by Django's per-model
# permissions. Apps in no area are listed after them under their own names.
NAV_AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Health", ("health",)),
    ("Metrics", ("metrics",)),
    ("Errors", ("errors",)),
    ("Backups", ("backups",)),
    ("Maintenance", ("maintenance",)),
    ("Alerts", ("alerts",)),
    ("Tasks & queues", ("queues", "django_celery_results", "django_celery_beat",
                        "health.workerheartbeat")),
    ("Access & audit", ("auth", "axes", "otp_totp", "opsconsole")),
)  # fmt: skip
# The console's own pages in the sidebar: (label, URL name, permissions of which any one
# suffices). A page whose URL does not resolve (its app is not installed) is left out.
CONSOLE_PAGES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Dashboard", "admin:index", ()),
    ("Metrics console", "metrics-console", ("metrics.view_performancemetric",)),
    ("Health timeline", "admin:health_healthcheck_timeline", ("health.view_healthcheck",)),
    ("Queues", "admin:queues_taskfailure_changelist", ("queues.view_taskfailure",)),
)


def group_by_area(app_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Django's app list regrouped into NAV_AREAS (models keep their own URLs and rights)."""
    placed: dict[str, dict[str, Any]] = {}
    rest = []
    for app in app_list:
        for model in app["models"]:
            key = f"{app['app_label']}.{model['object_name'].lower()}"
            area = _area_of(key) or _area_of(app["app_label"])
            if area is None:
                continue
            group = placed.setdefault(
                area, {**app, "name": area, "models": [], "app_label": f"area-{_slug(area)}"}
            )
            group["models"].append(model)
        if _area_of(app["app_label"]) is None:
            others = [
                m
                for m in app["models"]
                if _area_of(f"{app['app_label']}.{m['object_name'].lower()}") is None
            ]
            if others:
                rest.append({**app, "models": others})
    ordered = [placed[name] for name, _ in NAV_AREAS if name in placed]
    return ordered + rest


def _area_of(key: str) -> str | None:
    for name, members in NAV_AREAS:
        if key in members:
            return name
    return None


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def console_pages(request: HttpRequest) -> list[dict[str, str]]:
    """The console pages this user may open, with their URLs."""
    from django.urls import NoReverseMatch, reverse

    pages = []
    for label, name, perms in CONSOLE_PAGES:
        if perms and not any(request.user.has_perm(p) for p in perms):
            continue
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue
        pages.append({"label": label, "url": url})
    return pages


class OpsAdminSite(admin.AdminSite):
    """The console's admin site: every registered ModelAdmin gets guarded, audited actions and
    the custom pages it declares with `admin_page`."""

    site_header = "Ops Console"
    site_title = "Ops Console"
    index_title = "Operations"
    # The admin home's view, `view(request, site, extra_context)`: set by the console app
    # (console.apps) so this shared module imports no domain app. Unset: Django's app list.
    home_view: Callable[..., HttpResponse] | None = None

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> Any:
        apps = super().get_app_list(request, app_label)
        # An app's own index page keeps Django's list; the sidebar and home get the areas.
        return apps if app_label else group_by_area(apps)

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        if request.user.is_authenticated and request.user.is_staff:
            context["console_pages"] = console_pages(request)
        return context

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        if self.home_view is not None:
            return self.home_view(request, self, extra_context)
        return super().index(request, extra_context)

    # With OPS_ADMIN_OTP, the login asks for a TOTP code and only a session verified by one is
    # let in (django-otp's OTPAdminSite, read per request so the flag needs no other change).
    @property
    def login_form(self) -> Any:  # type: ignore[override]
        return OTPAdminAuthenticationForm if settings.OPS_ADMIN_OTP else AdminAuthenticationForm

    @property
    def login_template(self) -> str | None:  # type: ignore[override]
        return _admin_template_for_django_version() if settings.OPS_ADMIN_OTP else None

    def has_permission(self, request: HttpRequest) -> bool:
        if not super().has_permission(request):
            return False
        return not settings.OPS_ADMIN_OTP or bool(request.user.is_verified())  # type: ignore[union-attr]

    def register(
        self,
        model_or_iterable: type[Model] | Iterable[type[Model]],
        admin_class: Any = None,
        **options: Any,
    ) -> None:
        admin_class = admin_class or admin.ModelAdmin
        mixins = tuple(
            m for m in (GuardedActionsMixin, AdminPagesMixin) if not issubclass(admin_class, m)
        )
        if mixins:
            admin_class = type(
                admin_class.__name__,
                (*mixins, admin_class),
                {"__module__": admin_class.__module__, "__qualname__": admin_class.__qualname__},
            )
        super().register(model_or_iterable, admin_class, **options)
