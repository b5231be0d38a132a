"""The SystemLog audit trail: append-only in the admin, and every operational action lands in it."""

from __future__ import annotations

import logging

import pytest
from django.core.management import call_command
from django.test import Client

from opsconsole import audit
from opsconsole.logs import JsonFormatter, RequestContextFilter
from opsconsole.models import SystemLog

pytestmark = pytest.mark.django_db

URL = "/admin/opsconsole/systemlog/"


@pytest.fixture
def entry() -> SystemLog:
    return audit.record("backup.create", actor="cli:root", target="backup:1", details={"a": 1})


def test_systemlog_rows_cannot_be_edited_through_the_admin(client: Client, admin, entry) -> None:
    client.force_login(admin)
    page = client.get(f"{URL}{entry.pk}/change/")
    assert page.status_code == 200  # viewable, read-only
    assert b'name="_save"' not in page.content
    response = client.post(
        f"{URL}{entry.pk}/change/",
        {"action": "tampered", "target": "x", "result": "failure", "actor_name": "mallory"},
    )
    assert response.status_code == 403
    entry.refresh_from_db()
    assert (entry.action, entry.actor_name) == ("backup.create", "cli:root")


def test_systemlog_rows_cannot_be_deleted_through_the_admin(client: Client, admin, entry) -> None:
    client.force_login(admin)
    assert client.post(f"{URL}{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = client.post(URL, {"action": "delete_selected", "_selected_action": [entry.pk]})
    assert bulk.status_code in (200, 302)
    assert SystemLog.objects.filter(pk=entry.pk).exists()
    assert b"delete_selected" not in client.get(URL).content


def test_systemlog_rows_cannot_be_added_through_the_admin(client: Client, admin) -> None:
    client.force_login(admin)
    assert client.get(f"{URL}add/").status_code == 403
    assert client.post(f"{URL}add/", {"action": "forged"}).status_code == 403
    assert not SystemLog.objects.filter(action="forged").exists()


def test_an_operator_can_read_the_trail(client: Client, operator, entry) -> None:
    client.force_login(operator)
    page = client.get(URL)
    assert page.status_code == 200 and b"backup.create" in page.content


def test_a_record_carries_actor_action_target_result_details_ip_and_time(
    client: Client, admin
) -> None:
    client.force_login(admin)
    client.post(
        "/admin/maintenance/maintenancestate/",
        {"action": "down", "retry_after": "60", "message": "m"},
        HTTP_X_REQUEST_ID="req-0123456789",
    )
    row = SystemLog.objects.get(action="maintenance.down")
    assert row.actor == admin and row.actor_name == "alice"
    assert row.target == "maintenance mode" and row.result == "success"
    assert row.ip_address == "127.0.0.1" and row.request_id == "req-0123456789"
    assert row.created_at is not None and row.details["message"] == "m"


def test_operational_commands_are_recorded() -> None:
    call_command("down", "--message", "x")
    call_command("up")
    call_command("runmaintenance", "daily", "--step", "purge_expired_cache")
    actions = set(SystemLog.objects.values_list("action", flat=True))
    assert {"maintenance.down", "maintenance.up", "maintenance.run_daily"} <= actions


def test_logs_are_json_lines_carrying_the_request_id(client: Client, admin) -> None:
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    audit_logger = logging.getLogger("opsconsole.audit")
    audit_logger.addHandler(handler)
    old_level = audit_logger.level
    audit_logger.setLevel(logging.INFO)
    try:
        client.force_login(admin)
        client.post(
            "/admin/maintenance/maintenancestate/",
            {"action": "up"},
            HTTP_X_REQUEST_ID="req-abcdefgh42",
        )
    finally:
        audit_logger.removeHandler(handler)
        audit_logger.setLevel(old_level)
    import json

    payloads = [json.loads(line) for line in lines]
    assert any(
        p["request_id"] == "req-abcdefgh42" and p["audit_action"] == "maintenance.up"
        for p in payloads
    )


def test_a_bulk_deletion_in_the_admin_reaches_the_audit_trail(client: Client, admin) -> None:
    from health.models import ExternalService

    services = [
        ExternalService.objects.create(name=f"svc-{n}", url=f"https://svc{n}.example.com/")
        for n in range(3)
    ]
    client.force_login(admin)
    response = client.post(
        "/admin/health/externalservice/",
        {"action": "delete_selected", "_selected_action": [s.pk for s in services], "post": "yes"},
    )
    assert response.status_code == 302
    assert not ExternalService.objects.exists()
    (record,) = SystemLog.objects.filter(action="admin.bulk_delete")
    assert record.actor == admin
    assert record.target == "health.externalservice: 3 objects"
    assert record.details["count"] == 3
    assert sorted(o["id"] for o in record.details["objects"]) == sorted(str(s.pk) for s in services)


def test_the_bulk_deletion_confirmation_page_deletes_and_records_nothing(
    client: Client, admin
) -> None:
    from health.models import ExternalService

    services = [
        ExternalService.objects.create(name=f"svc-{n}", url=f"https://svc{n}.example.com/")
        for n in range(2)
    ]
    client.force_login(admin)
    page = client.post(
        "/admin/health/externalservice/",
        {"action": "delete_selected", "_selected_action": [s.pk for s in services]},
    )
    assert page.status_code == 200  # "are you sure?"
    assert ExternalService.objects.count() == 2
    assert not SystemLog.objects.filter(action="admin.bulk_delete").exists()
