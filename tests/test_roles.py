"""The three roles: groups made by the data migration, kept in sync after every migrate."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.core.management.base import CommandError

from opsconsole.models import SystemLog
from opsconsole.roles import OPERATIONS, ROLES, sync_roles
from tests.roles_support import member_of

pytestmark = pytest.mark.django_db


def codes(role: str) -> set[str]:
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Group.objects.get(name=role).permissions.select_related("content_type")
    }


def test_it_creates_the_three_groups() -> None:
    assert set(Group.objects.filter(name__in=ROLES).values_list("name", flat=True)) == set(ROLES)


def test_a_viewer_may_view_everything_and_change_nothing() -> None:
    viewer = codes("viewer")
    assert {"backups.view_backup", "health.view_healthcheck", "alerts.view_alert"} <= viewer
    assert "errors.view_issue" in viewer
    assert all(code.split(".")[1].startswith("view_") for code in viewer)
    # Accounts and second factors stay with superusers.
    assert not any(code.startswith(("auth.", "otp_totp.", "axes.")) for code in viewer)


def test_an_operator_runs_operations_but_neither_restores_nor_configures() -> None:
    operator = codes("operator")
    assert codes("viewer") < operator
    present = {
        code
        for code in OPERATIONS
        if Permission.objects.filter(
            content_type__app_label=code.split(".")[0], codename=code.split(".")[1]
        ).exists()
    }
    assert present <= operator
    assert {"health.run_check", "backups.operate_backup", "alerts.add_silence"} <= present
    assert "maintenance.change_maintenancestate" in operator
    assert "backups.restore_backup" not in operator
    assert "alerts.change_channel" not in operator
    assert "health.add_externalservice" not in operator


def test_an_administrator_holds_every_permission_of_the_console_apps() -> None:
    admin = codes("administrator")
    assert {"backups.restore_backup", "alerts.change_channel", "health.delete_externalservice"} <= (
        admin
    )
    assert codes("operator") < admin
    assert not any(code.startswith("auth.") for code in admin)


def test_a_permission_added_later_joins_its_roles_on_the_next_migrate() -> None:
    # An app installed after the roles migration (queues) brings new permissions: the
    # post_migrate receiver adds them to the roles at the next migrate.
    retry = Permission.objects.get(content_type__app_label="queues", codename="retry_task")
    view = Permission.objects.get(content_type__app_label="queues", codename="view_taskfailure")
    for group in Group.objects.filter(name__in=ROLES):
        group.permissions.remove(retry, view)
    assert "queues.retry_task" not in codes("operator")
    call_command("migrate", verbosity=0)
    assert "queues.retry_task" in codes("operator")
    assert "queues.view_taskfailure" in codes("viewer")
    assert "queues.retry_task" not in codes("viewer")
    assert {retry.pk, view.pk} <= set(
        Group.objects.get(name="administrator").permissions.values_list("pk", flat=True)
    )


def test_syncing_is_idempotent_and_keeps_permissions_granted_by_hand() -> None:
    viewer = Group.objects.get(name="viewer")
    extra = Permission.objects.get(content_type__app_label="alerts", codename="add_silence")
    viewer.permissions.add(extra)
    before = {role: codes(role) for role in ROLES}
    assert sync_roles(Group, Permission) == dict.fromkeys(ROLES, 0)
    assert {role: codes(role) for role in ROLES} == before


def test_a_missing_group_is_recreated_by_the_sync() -> None:
    Group.objects.filter(name="operator").delete()
    added = sync_roles(Group, Permission)
    assert added["operator"] > 0 and added["viewer"] == 0
    assert "health.run_check" in codes("operator")


def test_members_get_their_roles_permissions() -> None:
    vera, oscar, ada = (member_of(role) for role in ("viewer", "operator", "administrator"))
    assert vera.has_perm("backups.view_backup") and not vera.has_perm("health.run_check")
    assert oscar.has_perm("health.run_check") and not oscar.has_perm("backups.restore_backup")
    assert ada.has_perm("backups.restore_backup")


def test_grant_makes_a_user_staff_in_the_role(capsys: Any) -> None:
    User.objects.create_user("dora", "dora@example.com", "dora-pw")
    call_command("grant", "dora", "operator")
    dora = User.objects.get(username="dora")
    assert dora.is_staff and dora.has_perm("backups.operate_backup")
    assert "dora is now staff with the operator role" in capsys.readouterr().out
    entry = SystemLog.objects.get(action="auth.grant_role")
    assert entry.details == {"role": "operator", "only": False}
    call_command("grant", "dora", "viewer", "--only")
    assert list(User.objects.get(username="dora").groups.values_list("name", flat=True)) == [
        "viewer"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [(["nobody", "viewer"], "there is no user 'nobody'"), (["x", "root"], "unknown role 'root'")],
)
def test_grant_refuses_an_unknown_user_or_role(args: list[str], message: str) -> None:
    User.objects.create_user("x")
    with pytest.raises(CommandError, match=message):
        call_command("grant", *args)


def test_a_viewer_sees_a_channel_but_not_its_secret_or_url(client: Any) -> None:
    from alerts.models import Channel

    channel = Channel.objects.create(
        name="hooks", type="webhook", url="https://hooks.example.com/T0/B0/abc123hook"
    )
    client.force_login(member_of("viewer"))
    page = client.get(f"/admin/alerts/channel/{channel.pk}/change/")
    assert page.status_code == 200
    assert channel.secret and channel.secret not in page.content.decode()
    assert "abc123hook" not in page.content.decode()
    ada = member_of("administrator")
    client.force_login(ada)
    assert (
        channel.secret in client.get(f"/admin/alerts/channel/{channel.pk}/change/").content.decode()
    )
