"""Ingest behind gunicorn, as deployed: chunked bodies and the Host header."""

from __future__ import annotations

import gzip
import http.client
from collections.abc import Iterator
from typing import Any

import pytest

from errors.models import InboxEvent
from tests.conftest import subprocess_env
from tests.fixtures_errors import auth_header, envelope_bytes, make_event
from tests.servers import start_gunicorn

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def gunicorn(tmp_path: Any) -> Iterator[int]:
    env = subprocess_env(DJANGO_SETTINGS_MODULE="opsconsole.settings_test")
    with start_gunicorn("-w", "1", app="opsconsole.wsgi", env=env) as server:
        yield server.port


def post_chunked(port: int, path: str, body: bytes, headers: dict[str, str]) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    chunks = (body[i : i + 1000] for i in range(0, len(body), 1000))
    conn.request("POST", path, body=chunks, headers=headers, encode_chunked=True)
    return conn.getresponse()


def test_a_chunked_gzip_envelope_is_accepted_behind_gunicorn(gunicorn, project):
    proj, key = project
    event = make_event()
    response = post_chunked(
        gunicorn,
        f"/api/{proj.pk}/envelope/",
        gzip.compress(envelope_bytes(event)),
        {"X-Sentry-Auth": auth_header(key), "Content-Encoding": "gzip", "Host": "127.0.0.1"},
    )
    assert response.status == 200, response.read()
    assert InboxEvent.objects.filter(event_id=event["event_id"]).exists()


def test_an_unknown_host_is_refused_with_400(gunicorn, project):
    proj, key = project
    conn = http.client.HTTPConnection("127.0.0.1", gunicorn, timeout=10)
    conn.request(
        "POST",
        f"/api/{proj.pk}/envelope/",
        body=envelope_bytes(make_event()),
        headers={"X-Sentry-Auth": auth_header(key), "Host": "evil.example.com"},
    )
    assert conn.getresponse().status == 400
