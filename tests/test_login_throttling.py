"""Login throttling (django-axes) with real POSTs to the admin login: five failures for one
username from one client address lock that pair out for 15 minutes, and the lockout is one
audit record, not one per guess."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.utils import timezone

from opsconsole.models import SystemLog

pytestmark = pytest.mark.django_db
LOGIN = "/admin/login/"


@pytest.fixture
def alice(db: Any) -> User:
    return User.objects.create_user("alice", "alice@example.com", "right-password", is_staff=True)


def login(client: Client, password: str, username: str = "alice", **meta: Any) -> Any:
    meta.setdefault("REMOTE_ADDR", "203.0.113.5")
    return client.post(
        LOGIN, {"username": username, "password": password, "next": "/admin/"}, **meta
    )


def fail(client: Client, times: int, **meta: str) -> list[int]:
    return [login(client, f"wrong-{i}", **meta).status_code for i in range(times)]


def test_the_defaults_are_five_failures_per_username_and_address_and_fifteen_minutes() -> None:
    assert settings.AXES_FAILURE_LIMIT == 5
    assert timedelta(minutes=15) == settings.AXES_COOLOFF_TIME
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
    assert settings.AXES_CLIENT_IP_CALLABLE == "opsconsole.clientip.client_ip"


def test_five_failures_lock_the_username_out_from_that_address(client: Client, alice) -> None:
    assert fail(client, 5) == [200, 200, 200, 200, 429]
    locked = login(client, "right-password")
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    # Another address, or another username from the same address, is not locked.
    assert login(Client(), "right-password", REMOTE_ADDR="198.51.100.9").status_code == 302
    User.objects.create_user("bob", password="bob-password", is_staff=True)
    assert login(Client(), "bob-password", username="bob").status_code == 302


def test_the_lockout_ends_after_the_cool_off(client: Client, alice) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        fail(client, 5)
        clock.shift(timedelta(minutes=14))
        assert login(client, "right-password").status_code == 429
        # That try extended the lockout: 15 minutes from the last guess.
        clock.shift(timedelta(minutes=14))
        assert login(client, "right-password").status_code == 429
        clock.shift(timedelta(minutes=15, seconds=1))
        assert login(client, "right-password").status_code == 302


def test_a_lockout_is_one_audit_record_however_many_guesses_follow(client: Client, alice) -> None:
    fail(client, 5)
    fail(client, 20)
    assert login(client, "right-password").status_code == 429
    lockouts = SystemLog.objects.filter(action="auth.locked_out")
    assert lockouts.count() == 1
    record = lockouts.get()
    assert (record.target, record.result, record.ip_address) == ("alice", "denied", "203.0.113.5")
    assert record.details == {"failures": 5}
    # The four failures before the lockout are recorded; nothing after it.
    assert SystemLog.objects.filter(action="auth.login_failed").count() == 4
    assert "wrong-" not in str(list(SystemLog.objects.values()))


def test_a_success_before_the_limit_starts_the_count_again(client: Client, alice) -> None:
    fail(client, 4)
    assert login(client, "right-password").status_code == 302
    client.post("/admin/logout/")
    assert fail(client, 5) == [200, 200, 200, 200, 429]


@override_settings(OPS_BEHIND_PROXY=True, OPS_PROXY_HOPS=1, OPS_TRUSTED_PROXIES=[])
def test_behind_a_proxy_the_lockout_is_per_client_address_not_per_proxy(
    client: Client, alice
) -> None:
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    fail(client, 5, HTTP_X_FORWARDED_FOR="203.0.113.7", **proxy)
    assert (
        login(client, "right-password", HTTP_X_FORWARDED_FOR="203.0.113.7", **proxy).status_code
        == 429
    )
    other = login(Client(), "right-password", HTTP_X_FORWARDED_FOR="198.51.100.4", **proxy)
    assert other.status_code == 302
    assert SystemLog.objects.get(action="auth.locked_out").ip_address == "203.0.113.7"


def test_a_login_without_a_request_is_not_throttled_and_still_checks_the_password(alice) -> None:
    from django.contrib.auth import authenticate

    # A management command or a script has no client to throttle by.
    assert authenticate(username="alice", password="right-password") == alice
    assert authenticate(username="alice", password="wrong") is None
    assert Client().login(username="alice", password="right-password")
