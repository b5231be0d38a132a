"""Generated requests on /health/...: whatever path, method, query parameters (format, token,
anything else), headers (Accept, tokens, cookies, Host) a prober or a stranger sends, the answer
is a health answer (200/503) or a 4xx, never a 500, and details appear only with the real token
or a staff session.

Cases: CASES["health"] (tests/fuzz_support.py), derandomized.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.test import Client, override_settings
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz_support import CASES, fuzz_settings

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

TOKEN = "fuzz-health-token-0123456789abcdef"
SCOPES = ["", "ready", "live", "database", "cache", "broker", "disk", "errors", "nope", "x" * 300]
ODD = [
    "",
    "\x00",
    "%00",
    "%ff%fe",
    "\u2603",
    "\ud800",
    "a" * 5000,
    "json\n",
    " json",
    "JSON",
    "[]",
    "{}",
    "../../etc/passwd",
    "<script>",
    "'",
    "1e400",
]


def texts() -> st.SearchStrategy[str]:
    return st.sampled_from(ODD) | st.text(max_size=40)


def wire(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


def header(value: str) -> str:
    """As a WSGI server puts a header into environ: its bytes, decoded as latin-1 (PEP 3333)."""
    return wire(value).decode("latin-1")


def url(path: str, params: list[tuple[str, str]]) -> str:
    """The path and query string as raw bytes on the wire would give them (percent-encoded)."""
    path = quote(wire(path), safe="/%")
    if not params:
        return path
    return path + "?" + "&".join(f"{quote(wire(n))}={quote(wire(v))}" for n, v in params)


@st.composite
def probes(draw: st.DrawFn) -> dict[str, Any]:
    # Mostly known scopes, so most cases reach the parameter and header handling.
    known = st.sampled_from(SCOPES[:8] * 4 + SCOPES[8:])
    scope = draw(st.one_of(known, known, known, st.text(alphabet="abcz-_/.%", max_size=20)))
    slash = draw(st.sampled_from(["", "", "", "", "/", "/", "//", "/x", "/ready"]))
    path = (
        f"/health/{scope}{slash}"
        if scope or slash
        else draw(st.sampled_from(["/health", "/health/"]))
    )
    params: list[tuple[str, str]] = []
    for _ in range(draw(st.integers(0, 4))):
        name = draw(
            st.sampled_from(["format", "token", "format", "token", "details", "check"]) | texts()
        )
        if name == "format":
            value = draw(st.sampled_from(["json", "html", "health", "xml", ""]) | texts())
        elif name == "token":
            value = draw(st.sampled_from([TOKEN, TOKEN + "x", TOKEN[:-1], TOKEN.upper()]) | texts())
        else:
            value = draw(texts())
        params.append((name, value))
    headers: dict[str, str] = {}
    if draw(st.booleans()):
        headers["HTTP_ACCEPT"] = draw(
            st.sampled_from(
                ["application/health+json", "text/html", "application/json", "*/*", "text/html;q=0"]
            )
            | texts()
        )
    auth = draw(st.sampled_from(["none", "bearer", "header", "cookie", "staff", "garbage"]))
    if auth == "bearer":
        headers["HTTP_AUTHORIZATION"] = "Bearer " + draw(st.sampled_from([TOKEN, "x"]) | texts())
    elif auth == "header":
        headers["HTTP_X_HEALTH_TOKEN"] = draw(st.sampled_from([TOKEN]) | texts())
    elif auth == "cookie":
        headers["HTTP_COOKIE"] = f"{settings.SESSION_COOKIE_NAME}=" + draw(texts())
    elif auth == "garbage":
        headers["HTTP_AUTHORIZATION"] = draw(texts())
        headers["HTTP_COOKIE"] = draw(texts())
    if draw(st.booleans()):
        headers["HTTP_HOST"] = draw(
            st.sampled_from(["10.0.0.1", "10.0.0.1:8080", "[::1]", "evil.example", "a" * 300, ""])
            | texts()
        )
    method = draw(
        st.sampled_from(["GET"] * 6 + ["HEAD", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"])
    )
    return {"path": path, "params": params, "headers": headers, "method": method, "auth": auth}


# The checks themselves run once per scope (a long cache): the cases are about the requests.
@override_settings(OPS_HEALTH_TOKEN=TOKEN, OPS_HEALTH_CACHE_TTL=3600)
def test_fuzzed_health_requests_never_answer_5xx_other_than_a_failing_503(operator):
    client = Client(raise_request_exception=False)
    client.force_login(operator)
    staff_cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    client.cookies.clear()
    statuses: Counter[int] = Counter()
    errors: list[Any] = []
    count = 0

    @fuzz_settings(CASES["health"])
    @given(probe=probes())
    def one(probe: dict[str, Any]) -> None:
        nonlocal count
        count += 1
        headers: dict[str, Any] = {n: header(v) for n, v in probe["headers"].items()}
        if probe["auth"] == "staff":
            headers["HTTP_COOKIE"] = f"{settings.SESSION_COOKIE_NAME}={staff_cookie}"
        response = client.generic(probe["method"], url(probe["path"], probe["params"]), **headers)
        statuses[response.status_code] += 1
        if response.status_code >= 500 and response.status_code != 503:
            errors.append(probe)
            return
        if response.status_code == 503 or probe["method"] == "HEAD":
            return
        if response["Content-Type"].startswith(("application/json", "application/health+json")):
            body = json.loads(response.content)
            details = "serviceId" in body
            if details:
                # Details only for the real token or a staff session.
                trusted = probe["auth"] == "staff" or any(
                    value == TOKEN for name, value in probe["params"] if name == "token"
                )
                trusted |= probe["headers"].get("HTTP_X_HEALTH_TOKEN") == TOKEN
                trusted |= probe["headers"].get("HTTP_AUTHORIZATION") == f"Bearer {TOKEN}"
                assert trusted, probe

    one()
    print(f"health: {count} generated cases, statuses {dict(sorted(statuses.items()))}")
    assert count >= CASES["health"] * 0.95
    assert not errors, f"{len(errors)} cases answered 5xx, e.g. {errors[:3]}"
