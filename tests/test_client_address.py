"""The client address behind proxies: only hops our own proxies wrote are believed, so a spoofed
X-Forwarded-For neither passes the maintenance allow-list nor lands in the audit trail."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client, RequestFactory

from opsconsole.clientip import client_ip
from opsconsole.models import SystemLog
from tests.conftest import ROOT, subprocess_env

pytestmark = pytest.mark.django_db

PROXY = "10.0.0.2"  # our load balancer, the peer Django sees
CLIENT = "198.51.100.20"  # the address the load balancer received the request from
SPOOFED = "203.0.113.7"  # whatever the client chose to put in the header itself


@pytest.fixture
def behind_one_proxy(settings: Any) -> Any:
    settings.OPS_BEHIND_PROXY = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.OPS_PROXY_HOPS = 1
    settings.OPS_TRUSTED_PROXIES = []
    return settings


def _address(forwarded: str | None, peer: str = PROXY) -> str | None:
    request = RequestFactory().get("/", REMOTE_ADDR=peer)
    if forwarded is not None:
        request.META["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_ip(request)


def test_it_does_not_let_a_spoofed_leftmost_hop_pass_the_allow_list(
    client: Client, behind_one_proxy
) -> None:
    call_command("down", "--allow", "203.0.113.0/24")
    spoofed = client.get(
        "/nothing-here", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"{SPOOFED}, {CLIENT}"
    )
    assert spoofed.status_code == 503
    # The same allow-list still serves a client that really is on it.
    real = client.get(
        "/nothing-here", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"{CLIENT}, {SPOOFED}"
    )
    assert real.status_code == 404


def test_it_records_the_hop_our_proxy_wrote_in_the_audit_trail(
    client: Client, admin, behind_one_proxy
) -> None:
    client.force_login(admin)
    client.post(
        "/admin/maintenance/maintenancestate/",
        {"action": "down", "retry_after": "60", "message": "m"},
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR=f"{SPOOFED}, {CLIENT}",
    )
    assert SystemLog.objects.get(action="maintenance.down").ip_address == CLIENT


@pytest.mark.parametrize("header", ["not-an-address", "", " , ", "300.1.2.3", "[::1"])
def test_it_falls_back_to_the_peer_when_the_header_is_malformed(
    client: Client, admin, behind_one_proxy, header: str
) -> None:
    client.force_login(admin)
    client.post(
        "/admin/maintenance/maintenancestate/",
        {"action": "down", "retry_after": "60", "message": "m"},
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR=header,
    )
    assert SystemLog.objects.get(action="maintenance.down").ip_address == PROXY


def test_it_ignores_the_header_when_not_behind_a_proxy(settings: Any) -> None:
    settings.OPS_BEHIND_PROXY = False
    assert _address(f"{SPOOFED}, {CLIENT}") == PROXY


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (1, f"{SPOOFED}, {CLIENT}", CLIENT),
        (2, f"{SPOOFED}, {CLIENT}, 10.0.0.9", CLIENT),
        (2, f"{CLIENT}, 10.0.0.9", CLIENT),
        # Fewer hops than proxies: the request skipped the outer proxy, nothing in it is ours.
        (2, CLIENT, PROXY),
        (0, f"{SPOOFED}, {CLIENT}", PROXY),
        # Ports and brackets as some proxies write them.
        (1, f"{SPOOFED}, {CLIENT}:51234", CLIENT),
        (1, "[2001:db8::5]:443", "2001:db8::5"),
        (1, "2001:db8::5", "2001:db8::5"),
    ],
)
def test_it_counts_trusted_hops_from_the_right(
    behind_one_proxy, hops: int, forwarded: str, expected: str
) -> None:
    behind_one_proxy.OPS_PROXY_HOPS = hops
    assert _address(forwarded) == expected


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        (PROXY, f"{SPOOFED}, {CLIENT}, 10.1.1.1", CLIENT),
        (PROXY, f"{SPOOFED}, {CLIENT}", CLIENT),
        # Internal callers only: the leftmost of our own addresses is the origin.
        (PROXY, "10.3.3.3, 10.1.1.1", "10.3.3.3"),
        # A peer outside the trusted networks wrote the whole header: believe none of it.
        (CLIENT, f"{SPOOFED}, 10.1.1.1", CLIENT),
        # A malformed hop before reaching an untrusted one: fall back to the peer.
        (PROXY, f"{CLIENT}, garbage, 10.1.1.1", PROXY),
        # Hop count is not used when networks are given.
        (PROXY, f"{SPOOFED}, {CLIENT}, 10.1.1.1, 10.2.2.2", CLIENT),
    ],
)
def test_it_skips_trusted_proxy_networks_from_the_right(
    behind_one_proxy, peer: str, forwarded: str, expected: str
) -> None:
    behind_one_proxy.OPS_TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert _address(forwarded, peer=peer) == expected


def test_a_bad_trusted_proxy_network_stops_start_up_naming_it() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=subprocess_env(OPS_BEHIND_PROXY="1", OPS_TRUSTED_PROXIES="10.0.0.0/8, lb.internal"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "OPS_TRUSTED_PROXIES: 'lb.internal' is not an IP address or network" in result.stderr
