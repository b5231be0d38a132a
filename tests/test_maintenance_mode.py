"""Maintenance mode: 503 with Retry-After, the bypass secret and cookie, the admin, `up`."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from django.core import signing
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from maintenance import bypass, state
from maintenance.services import bring_down
from opsconsole.models import SystemLog

pytestmark = pytest.mark.django_db

SECRET = "let-me-in-0123456789"


def test_it_serves_normally_while_up(client: Client) -> None:
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert "Retry-After" not in response


def test_it_answers_503_with_retry_after_while_down(client: Client) -> None:
    call_command("down", "--retry", "120", "--message", "Upgrading the database")
    response = client.get("/")
    assert response.status_code == 503
    assert response["Retry-After"] == "120"
    assert response["Cache-Control"] == "no-store"
    body = response.content.decode()
    assert "Ops Console" in body and "Upgrading the database" in body
    assert response["Content-Type"].startswith("text/html")


def test_it_answers_json_to_clients_that_ask_for_it(client: Client) -> None:
    call_command("down", "--retry", "30", "--message", "back soon")
    response = client.get("/some/api", HTTP_ACCEPT="application/json")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response.json() == {"status": "maintenance", "message": "back soon", "retry_after": 30}


def test_it_escapes_the_message_on_the_page(client: Client) -> None:
    bring_down(message="<script>alert(1)</script>")
    body = client.get("/").content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;" in body


def test_the_secret_sets_a_bypass_cookie_that_lets_requests_through(client: Client) -> None:
    call_command("down", "--secret", SECRET)
    response = client.get(f"/{SECRET}")
    assert response.status_code == 302
    assert response["Location"] == "/"
    cookie = response.cookies[bypass.COOKIE_NAME]
    assert cookie["httponly"]
    assert int(cookie["max-age"]) == 12 * 3600
    assert SECRET not in cookie.value
    # The client keeps the cookie: the next request is served.
    assert client.get("/admin/login/").status_code == 200
    assert client.get("/nothing-here").status_code == 404  # served (a real 404), not 503


def test_a_forged_bypass_cookie_does_not_work(client: Client) -> None:
    call_command("down", "--secret", SECRET)
    snapshot = state.current(fresh=True)
    forged = [
        "anything",
        signing.dumps({"b": "0" * 32}, salt="maintenance.bypass"),  # right key, wrong binding
        signing.dumps({"b": bypass._binding(snapshot)}, salt="another-salt"),
        bypass.make_cookie_value(snapshot)[:-2] + "xx",  # tampered signature
    ]
    for value in forged:
        client.cookies[bypass.COOKIE_NAME] = value
        assert client.get("/nothing-here").status_code == 503, value


def test_the_bypass_cookie_expires_after_12_hours(client: Client) -> None:
    call_command("down", "--secret", SECRET)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        assert client.get(f"/{SECRET}").status_code == 302
        traveller.shift(timedelta(hours=11, minutes=59))
        assert client.get("/nothing-here").status_code == 404
        traveller.shift(timedelta(minutes=2))
        assert client.get("/nothing-here").status_code == 503


def test_a_new_secret_invalidates_cookies_of_the_old_one(client: Client) -> None:
    call_command("down", "--secret", SECRET)
    client.get(f"/{SECRET}")
    call_command("down", "--secret", "a-different-secret-42")
    assert client.get("/nothing-here").status_code == 503


def test_a_wrong_secret_path_gets_503_and_no_cookie(client: Client) -> None:
    call_command("down", "--secret", SECRET)
    response = client.get("/not-the-secret-0123456")
    assert response.status_code == 503
    assert bypass.COOKIE_NAME not in response.cookies


def test_the_admin_stays_reachable_for_staff(client: Client, admin, outsider) -> None:
    call_command("down")
    assert client.get("/admin/login/").status_code == 200
    client.force_login(admin)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/opsconsole/systemlog/").status_code == 200
    # Someone without staff rights gets the admin's login page, nothing more.
    other = Client()
    other.force_login(outsider)
    assert other.get("/admin/").status_code == 302


def test_allowed_ips_are_served(client: Client) -> None:
    call_command("down", "--allow", "127.0.0.0/8")
    assert client.get("/nothing-here").status_code == 404
    assert client.get("/nothing-here", REMOTE_ADDR="10.1.2.3").status_code == 503


def test_health_live_stays_200(client: Client) -> None:
    call_command("down")
    response = client.get("/health/live")
    assert response.status_code == 200


def test_up_restores_service(client: Client) -> None:
    call_command("down")
    assert client.get("/nothing-here").status_code == 503
    call_command("up")
    assert client.get("/nothing-here").status_code == 404


def test_every_process_sees_the_state_through_the_database() -> None:
    call_command("down", "--message", "shared")
    # Another process has its own in-process cache; it reads the row.
    state.invalidate()
    snapshot = state.current()
    assert snapshot.is_down and snapshot.message == "shared"


def test_down_and_up_are_recorded_in_the_audit_trail() -> None:
    call_command("down", "--secret", SECRET, "--retry", "90")
    call_command("up")
    down = SystemLog.objects.get(action="maintenance.down")
    assert down.actor_name.startswith("cli")
    assert down.details["retry_after"] == 90
    assert down.details["bypass_secret"] is True
    assert SECRET not in json.dumps(down.details)
    assert SystemLog.objects.filter(action="maintenance.up").count() == 1


def test_the_restore_context_manager_leaves_the_state_as_it_was(client: Client) -> None:
    with state.maintenance_mode(message="restoring", actor="backups"):
        assert client.get("/nothing-here").status_code == 503
    assert client.get("/nothing-here").status_code == 404


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--retry", "0"], "retry must be between 1 and 86400"),
        (["--retry", "abc"], "invalid int value"),
        (["--secret", "short"], "16 to 128 characters"),
        (["--secret", "has/slash-0123456789"], "16 to 128 characters"),
        (["--allow", "not-an-ip"], "not an IP address or network"),
        (["--secret", SECRET, "--with-secret"], "not allowed with argument"),
    ],
)
def test_down_refuses_bad_input_and_changes_nothing(args: list[str], fragment: str) -> None:
    with pytest.raises(CommandError, match=fragment):
        call_command("down", *args)
    assert not state.current(fresh=True).is_down


def test_down_with_secret_generates_one_and_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("down", "--with-secret")
    out = capsys.readouterr().out
    secret = out.split("visit /", 1)[1].split()[0]
    assert bypass.is_secret_path(f"/{secret}", state.current(fresh=True))


def test_up_when_already_up_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("up")
    assert "already off" in capsys.readouterr().out


# --- the console toggle ---------------------------------------------------------------------
def test_an_admin_takes_the_site_down_and_up_from_the_console(client: Client, admin) -> None:
    client.force_login(admin)
    url = "/admin/maintenance/maintenancestate/"
    assert client.get(url).status_code == 200
    response = client.post(
        url, {"action": "down", "message": "console", "retry_after": "45", "allowed_ips": ""}
    )
    assert response.status_code == 302
    snapshot = state.current(fresh=True)
    assert snapshot.is_down and snapshot.retry_after == 45
    entry = SystemLog.objects.get(action="maintenance.down")
    assert entry.actor == admin and entry.ip_address == "127.0.0.1"
    assert client.post(url, {"action": "up"}).status_code == 302
    assert not state.current(fresh=True).is_down
    assert SystemLog.objects.get(action="maintenance.up").actor == admin


def test_the_console_refuses_bad_input_with_400(client: Client, admin) -> None:
    client.force_login(admin)
    response = client.post(
        "/admin/maintenance/maintenancestate/",
        {"action": "down", "retry_after": "-5", "secret": "x", "allowed_ips": "nope"},
    )
    assert response.status_code == 400
    assert not state.current(fresh=True).is_down


def test_an_operator_with_view_rights_sees_but_cannot_toggle(client: Client, operator) -> None:
    client.force_login(operator)
    url = "/admin/maintenance/maintenancestate/"
    page = client.get(url)
    assert page.status_code == 200
    assert b"Take the site down" not in page.content
    assert client.post(url, {"action": "down", "retry_after": "60"}).status_code == 403
    assert not state.current(fresh=True).is_down


def test_an_outsider_cannot_reach_the_toggle(client: Client, outsider) -> None:
    client.force_login(outsider)
    response = client.post("/admin/maintenance/maintenancestate/", {"action": "down"})
    assert response.status_code == 302  # to the admin login
    assert not state.current(fresh=True).is_down


def test_exempt_paths_cost_no_state_lookup(client: Client, django_assert_num_queries) -> None:
    with django_assert_num_queries(0):
        client.get("/static/missing.css")
