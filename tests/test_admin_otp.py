"""OPS_ADMIN_OTP=1: the console asks for a TOTP code at login (django-otp), checked here with
codes computed from the device's key by RFC 6238 itself, not by django-otp."""

from __future__ import annotations

import hashlib
import hmac
import struct
import time
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client, override_settings
from django_otp.plugins.otp_totp.models import TOTPDevice

pytestmark = pytest.mark.django_db
LOGIN = "/admin/login/"


def totp(key: bytes, at: float, step: int = 30, digits: int = 6) -> str:
    counter = struct.pack(">Q", int(at // step))
    digest = hmac.new(key, counter, hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(code % 10**digits).zfill(digits)


@pytest.fixture
def dora(db: Any) -> tuple[User, TOTPDevice]:
    user = User.objects.create_user("dora", password="dora-password", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    return user, device


def login(client: Client, **fields: str) -> Any:
    data = {"username": "dora", "password": "dora-password", "next": "/admin/", **fields}
    return client.post(LOGIN, data, REMOTE_ADDR="203.0.113.20")


def signed_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


@override_settings(OPS_ADMIN_OTP=True)
def test_with_otp_on_a_password_alone_does_not_open_the_console(client: Client, dora) -> None:
    page = client.get(LOGIN)
    assert b'name="otp_token"' in page.content
    response = login(client)
    assert response.status_code == 200
    assert not signed_in(client)
    _, device = dora
    wrong = str((int(totp(device.bin_key, time.time())) + 1) % 10**6).zfill(6)
    assert login(client, otp_device=device.persistent_id, otp_token=wrong).status_code == 200
    assert not signed_in(client)


@override_settings(OPS_ADMIN_OTP=True)
def test_with_otp_on_the_current_totp_code_opens_the_console(client: Client, dora) -> None:
    _, device = dora
    # As a browser does it: the password first, then the device the form offers and its code.
    first = login(client)
    assert device.persistent_id.encode() in first.content
    code = totp(device.bin_key, time.time())
    response = login(client, otp_device=device.persistent_id, otp_token=code)
    assert response.status_code == 302, response.content.decode()[-3000:]
    assert response["Location"] == "/admin/"
    assert signed_in(client)


@override_settings(OPS_ADMIN_OTP=True)
def test_with_otp_on_a_password_only_session_is_sent_to_log_in(client: Client, dora) -> None:
    user, _ = dora
    client.force_login(user)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


def test_with_otp_off_the_password_is_enough(client: Client, dora) -> None:
    assert b'name="otp_token"' not in client.get(LOGIN).content
    assert login(client).status_code == 302
    assert signed_in(client)


def test_a_totp_secret_is_shown_to_its_own_user_only(dora) -> None:
    user, device = dora
    other = User.objects.create_user("eve", password="eve-password", is_staff=True)
    other.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    eve = Client()
    eve.force_login(other)
    base = f"/admin/otp_totp/totpdevice/{device.pk}"
    assert eve.get(f"{base}/config/").status_code == 403
    assert eve.get(f"{base}/qrcode/").status_code == 403
    assert device.key.encode() not in eve.get(f"{base}/change/").content
    owner = Client()
    owner.force_login(user)
    assert owner.get(f"{base}/config/").status_code == 200
    qrcode = owner.get(f"{base}/qrcode/")
    assert (qrcode.status_code, qrcode["Content-Type"]) == (200, "image/svg+xml")
    assert device.key.encode() in owner.get(f"{base}/change/").content
