"""Health responses carry the same security headers as the rest of the console."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, override_settings

SECURITY_HEADERS = (
    "X-Content-Type-Options",
    "Referrer-Policy",
    "X-Frame-Options",
    "Cross-Origin-Opener-Policy",
)
PROBES = ("/health/live", "/health/", "/health/ready", "/health/switch", "/health/nope")


def _security_headers(response: Any) -> dict[str, str | None]:
    return {
        name: response.headers.get(name)
        for name in (*SECURITY_HEADERS, "Strict-Transport-Security")
    }


@pytest.mark.django_db
def test_every_health_response_carries_the_security_headers_the_console_sends(
    client: Client, only_switch: Any
) -> None:
    console = _security_headers(client.get("/admin/login/"))
    assert all(console[name] for name in SECURITY_HEADERS), console
    for path in PROBES:
        for method in (client.get, client.head, client.post):
            response = method(path, HTTP_HOST="10.0.0.7")
            assert _security_headers(response) == console, (method.__name__, path)


@pytest.mark.django_db
def test_health_responses_over_https_carry_hsts_under_production_settings(
    client: Client, only_switch: Any
) -> None:
    production = {
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
    }
    with override_settings(**production):
        console = client.get("/admin/login/", HTTP_X_FORWARDED_PROTO="https")
        expected = "max-age=31536000; includeSubDomains"
        assert console["Strict-Transport-Security"] == expected
        for path in PROBES:
            response = client.get(path, HTTP_HOST="10.0.0.7", HTTP_X_FORWARDED_PROTO="https")
            assert response["Strict-Transport-Security"] == expected, path
            assert _security_headers(response) == _security_headers(console), path
        # A load balancer probing over plain HTTP is answered, not redirected, and gets no HSTS
        # (browsers ignore it over HTTP anyway).
        plain = client.get("/health/live", HTTP_HOST="10.0.0.7")
        assert plain.status_code == 200
        assert "Strict-Transport-Security" not in plain.headers
