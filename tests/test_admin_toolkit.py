"""The console's admin toolkit (opsconsole.admintools): one read-only base for recorded data and
one way to mount a custom page, behind the admin's own gate (login, staff, second factor)."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.staticfiles import finders
from django.test import Client, RequestFactory, override_settings

from opsconsole.admintools import ReadOnlyAdmin

pytestmark = pytest.mark.django_db
OUR_APPS = {"alerts", "backups", "errors", "health", "maintenance", "metrics", "opsconsole"}


@override_settings(OPS_ADMIN_OTP=True)
def test_the_metrics_console_asks_for_the_second_factor_like_the_admin(operator: Any) -> None:
    client = Client()
    client.force_login(operator)  # a password session, no verified TOTP device
    response = client.get("/console/metrics/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_every_read_only_model_admin_shares_the_one_base() -> None:
    # Refusing both add and change by hand is what the base is for.
    hand_written = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in OUR_APPS:
            continue
        for cls in type(model_admin).__mro__:
            if cls is ReadOnlyAdmin or cls.__module__.split(".")[0] not in OUR_APPS:
                continue
            if {"has_add_permission", "has_change_permission"} <= vars(cls).keys():
                hand_written.append(f"{cls.__module__}.{cls.__qualname__}")
    assert hand_written == []


def _may_delete(user: Any, app_model: str) -> bool:
    request = RequestFactory().get("/admin/")
    request.user = user
    model = apps.get_model(app_model)
    return admin.site._registry[model].has_delete_permission(request)


def test_records_owned_elsewhere_cannot_be_deleted_even_by_a_superuser(admin: Any) -> None:
    for model in ("opsconsole.SystemLog", "backups.Backup", "maintenance.MaintenanceRun"):
        assert not _may_delete(admin, model), model


def test_measured_rows_stay_deletable_by_a_superuser(admin: Any) -> None:
    measured = ("metrics.PerformanceMetric", "health.HealthCheck", "errors.Issue", "alerts.Alert")
    for model in measured:
        assert _may_delete(admin, model), model


def test_a_custom_page_answers_only_its_declared_methods(admin: Any) -> None:
    client = Client()
    client.force_login(admin)
    assert client.get("/admin/errors/issue/1/act/resolve/").status_code == 405
    assert client.put("/admin/maintenance/maintenancestate/").status_code == 405


def test_console_pages_share_one_stylesheet_and_carry_no_inline_styles(admin: Any) -> None:
    client = Client()
    client.force_login(admin)
    for url in (
        "/admin/",
        "/console/metrics/",
        "/admin/errors/issue/",
        "/admin/health/healthcheck/",
    ):
        body = client.get(url).content.decode()
        assert 'href="/static/opsconsole/console.css"' in body, url
        assert "<style" not in body and 'style="' not in body, url
    assert finders.find("opsconsole/console.css")


def test_every_chart_is_drawn_by_the_one_chart_include(operator: Any) -> None:
    client = Client()
    client.force_login(operator)
    response = client.get("/console/metrics/")
    used = {t.name for t in response.templates}
    assert "admin/ops_chart.html" in used
    assert response.content.decode().count('<figure class="ops-chart">') >= 7
