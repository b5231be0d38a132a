"""No one acts unseen: every admin page and action that changes state needs its permission, and
every action run is written to the audit trail.

The tests enumerate every ModelAdmin registered on the console's site (third-party ones from
django-celery-beat, django-celery-results and django.contrib.auth included), every action and
every URL each ModelAdmin serves, so a new admin, action or custom page is covered as it lands.
"""

from __future__ import annotations

import datetime
import decimal
import itertools
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.contrib.sessions.models import Session
from django.db import models
from django.forms.models import model_to_dict
from django.test import Client
from django.urls import URLPattern
from django.utils import timezone

from maintenance.models import MaintenanceState
from opsconsole.models import SystemLog

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("memory_broker")]

_serial = itertools.count(1)
# Values for the parameters of custom admin URLs; a new parameter fails the test until it is
# listed here, so no custom page escapes it.
URL_PARAMETER_VALUES = {"verb": ["resolve", "ignore", "reopen"]}
STANDARD_URLS = {"changelist", "add", "history", "delete", "change"}


# --- objects of every registered model ------------------------------------------------------
def _value(field: models.Field, n: int) -> Any:  # noqa: PLR0911
    if field.choices:
        return field.choices[0][0]
    if isinstance(field, models.ForeignKey):
        return make(field.related_model)
    if isinstance(field, models.EmailField):
        return f"user{n}@example.com"
    if isinstance(field, models.URLField):
        return f"https://example.com/{n}"
    if isinstance(field, models.GenericIPAddressField):
        return "192.0.2.1"
    if isinstance(field, models.UUIDField):
        return uuid.uuid4()
    if isinstance(field, models.CharField | models.TextField):
        return f"v{n}"[: field.max_length or 50]
    if isinstance(field, models.BooleanField):
        return False
    if isinstance(field, models.DecimalField):
        return decimal.Decimal(1)
    if isinstance(field, models.FloatField):
        return 1.0
    if isinstance(field, models.IntegerField):
        return n
    if isinstance(field, models.DateTimeField):
        return timezone.now()
    if isinstance(field, models.DateField):
        return timezone.now().date()
    if isinstance(field, models.TimeField):
        return datetime.time(12, 0)
    if isinstance(field, models.DurationField):
        return datetime.timedelta(seconds=n)
    if isinstance(field, models.JSONField):
        return {}
    if isinstance(field, models.BinaryField):
        return b"{}"
    raise AssertionError(f"no test value for {field!r}: teach tests/test_admin_permissions.py")


def make(model: type[models.Model]) -> models.Model:
    """One saved row of `model`, every required field filled."""
    if model is MaintenanceState:
        return MaintenanceState.objects.get_or_create(pk=1)[0]
    n = next(_serial)
    values: dict[str, Any] = {}
    for field in model._meta.concrete_fields:
        if field.primary_key and field.auto_created:
            continue
        if isinstance(field, models.AutoField) or field.has_default() or field.null:
            continue
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            continue
        values[field.name] = _value(field, n)
    if model is User:
        values.update(username=f"user{n}", password="!")
    if "ends_at" in values and "starts_at" in values:
        values["ends_at"] = values["starts_at"] + datetime.timedelta(hours=1)
    if model._meta.label == "django_celery_beat.PeriodicTask":
        every = apps.get_model("django_celery_beat", "IntervalSchedule")
        values.update(task="health.tasks.perform_health_check", interval=make(every))
    if model._meta.label == "alerts.Notification":
        values["status"] = "sent"  # one open notification per kind at most
    if model._meta.label == "alerts.Channel":
        values.update(type="email", recipients="oncall@example.com")
    return model._default_manager.create(**values)


def snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row of every model but the audit trail itself and sessions."""
    skip = {SystemLog, Session}
    return {
        model._meta.label: list(model._default_manager.order_by("pk").values())
        for model in apps.get_models()
        if model not in skip and model._meta.managed
    }


def mutated(obj: models.Model) -> dict[str, Any]:
    """The object's fields as a form would post them, with every text changed."""
    data: dict[str, Any] = {}
    for name, value in model_to_dict(obj).items():
        if isinstance(value, list):
            data[name] = [getattr(v, "pk", v) for v in value]
        elif isinstance(value, str):
            data[name] = value + "-changed"
        elif isinstance(value, bool):
            data[name] = "" if value else "on"
        elif value is not None:
            data[name] = str(getattr(value, "pk", value))
    return data


# --- enumerating the site -------------------------------------------------------------------
def registered() -> list[tuple[type[models.Model], Any]]:
    return list(admin.site._registry.items())


def all_actions(model_admin: Any) -> list[str]:
    return [name for _, name, _ in model_admin._get_base_actions()]


def urls_of(model_admin: Any, obj: models.Model) -> Iterator[tuple[str, str]]:
    """(kind, url) for every URL the ModelAdmin serves, parameters filled in."""
    opts = model_admin.model._meta
    base = f"/admin/{opts.app_label}/{opts.model_name}/"
    for pattern in model_admin.get_urls():
        assert isinstance(pattern, URLPattern)
        route = str(pattern.pattern)
        suffix = (pattern.name or "").removeprefix(f"{opts.app_label}_{opts.model_name}_")
        kind = suffix if suffix in STANDARD_URLS else f"custom:{pattern.name or route}"
        names = re.findall(r"<(?:\w+:)?(\w+)>", route)
        choices: list[list[str]] = []
        for name in names:
            if name in {"object_id", "id", "pk"} or name.endswith("_id"):
                choices.append([str(obj.pk)])
            else:
                assert name in URL_PARAMETER_VALUES, f"{base}{route}: unknown parameter {name!r}"
                choices.append(URL_PARAMETER_VALUES[name])
        for combination in itertools.product(*choices):
            path = route
            for name, value in zip(names, combination, strict=True):
                path = re.sub(rf"<(?:\w+:)?{name}>", value, path, count=1)
            yield kind, base + path


# --- actors ---------------------------------------------------------------------------------
@pytest.fixture
def viewer(db: Any) -> tuple[User, Client]:
    """Staff with every view permission and nothing else."""
    user = User.objects.create_user("vera", "vera@example.com", "vera-password", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    client = Client()
    client.force_login(user)
    return user, client


@pytest.fixture
def changer(db: Any) -> tuple[User, Client]:
    """Staff with every permission, custom ones included (not a superuser)."""
    user = User.objects.create_user("carl", "carl@example.com", "carl-password", is_staff=True)
    user.user_permissions.set(Permission.objects.all())
    client = Client()
    client.force_login(user)
    return user, client


def _refused(response: Any) -> bool:
    return response.status_code in (403, 405) or (
        response.status_code in (200, 302) and b"errorlist" not in response.content
    )


# --- tests ----------------------------------------------------------------------------------
def test_the_site_guards_every_registered_model_admin_third_party_ones_included() -> None:
    from opsconsole.admintools import GuardedActionsMixin, OpsAdminSite

    assert isinstance(admin.site, OpsAdminSite)
    labels = {model._meta.label for model, _ in registered()}
    assert {
        "django_celery_beat.PeriodicTask",
        "django_celery_beat.IntervalSchedule",
        "django_celery_beat.CrontabSchedule",
        "django_celery_beat.SolarSchedule",
        "django_celery_beat.ClockedSchedule",
        "django_celery_results.TaskResult",
        "django_celery_results.GroupResult",
        "auth.User",
        "axes.AccessAttempt",
    } <= labels
    for model, model_admin in registered():
        assert isinstance(model_admin, GuardedActionsMixin), model


def test_a_view_only_operator_cannot_disable_the_backup_schedule(viewer) -> None:
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    user, client = viewer
    crontab = CrontabSchedule.objects.create(minute="0", hour="2")
    task = PeriodicTask.objects.create(
        name="backups-daily", task="backups.tasks.run_scheduled_backup", crontab=crontab
    )
    response = client.post(
        "/admin/django_celery_beat/periodictask/",
        {"action": "disable_tasks", "index": "0", "_selected_action": [task.pk]},
    )
    assert response.status_code == 403
    task.refresh_from_db()
    assert task.enabled
    denied = SystemLog.objects.get(action="admin.action")
    assert denied.result == "denied"
    assert denied.actor == user
    assert denied.details["action"] == "disable_tasks"


def test_a_view_only_operator_changes_nothing_through_any_admin_page_or_action(viewer) -> None:
    user, client = viewer
    objects = {model: make(model) for model, _ in registered()}
    before = snapshot()
    tried = 0
    for model, model_admin in registered():
        obj = objects[model]
        for kind, url in urls_of(model_admin, obj):
            payloads: list[dict[str, Any]] = [{**mutated(obj), "post": "yes"}]
            if kind in {
                "changelist",
                f"custom:{model._meta.app_label}_{model._meta.model_name}_changelist",
            }:
                payloads += [
                    {"action": name, "index": "0", "_selected_action": [obj.pk], "post": "yes"}
                    for name in all_actions(model_admin)
                ]
                payloads += [
                    {
                        "action": name,
                        "index": "0",
                        "select_across": "1",
                        "_selected_action": [obj.pk],
                    }
                    for name in all_actions(model_admin)
                ]
                editable = {
                    f"form-0-{field}": mutated(obj).get(field, "1")
                    for field in model_admin.list_editable
                }
                payloads.append(
                    {
                        "form-TOTAL_FORMS": "1",
                        "form-INITIAL_FORMS": "1",
                        "form-0-id": str(obj.pk),
                        "_save": "Save",
                        **editable,
                    }
                )
            for data in payloads:
                response = client.post(url, data)
                tried += 1
                assert _refused(response), (url, data, response.status_code)
                assert snapshot() == before, (url, data)
    assert tried > 100
    # Every refused action was a visible attempt.
    denied = SystemLog.objects.filter(action="admin.action", result="denied", actor=user)
    assert denied.filter(details__action="disable_tasks").exists()
    assert denied.filter(details__action="run_tasks").exists()


def test_every_action_run_with_its_permission_is_in_the_audit_trail(changer) -> None:
    user, client = changer
    ran = 0
    for model, model_admin in registered():
        request = _request_for(user)
        for name in model_admin.get_actions(request):
            obj = make(model)
            before = SystemLog.objects.count()
            response = client.post(
                f"/admin/{model._meta.app_label}/{model._meta.model_name}/",
                {"action": name, "index": "0", "_selected_action": [obj.pk], "post": "yes"},
            )
            assert response.status_code in (200, 302), (model, name, response.status_code)
            rows = list(SystemLog.objects.order_by("id")[before:])
            recorded = [
                row
                for row in rows
                if row.actor == user
                and (
                    (row.action == "admin.action" and row.details.get("action") == name)
                    or (name == "delete_selected" and row.action == "admin.delete")
                )
            ]
            assert recorded, (model, name, [(r.action, r.target) for r in rows])
            ran += 1
    assert ran >= 20


def test_an_action_records_who_ran_it_on_which_objects(changer) -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    user, client = changer
    every = IntervalSchedule.objects.create(every=60, period="seconds")
    tasks = [
        PeriodicTask.objects.create(
            name=f"t{i}", task="health.tasks.perform_health_check", interval=every
        )
        for i in range(2)
    ]
    client.post(
        "/admin/django_celery_beat/periodictask/",
        {"action": "disable_tasks", "index": "0", "_selected_action": [t.pk for t in tasks]},
    )
    assert not PeriodicTask.objects.filter(enabled=True).exists()
    row = SystemLog.objects.get(action="admin.action")
    assert row.actor == user
    assert row.result == "success"
    assert row.target == "django_celery_beat.periodictask: disable_tasks on 2 objects"
    assert sorted(row.details["objects"]) == sorted(str(t.pk) for t in tasks)
    assert row.details["count"] == 2


def _request_for(user: User) -> Any:
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = user
    return request
