"""Fuzzing the ingest: garbage gets a 4xx (never a 5xx), and valid events sent in the same
run are all stored."""

from __future__ import annotations

import json
import zlib
from typing import Any

import brotli
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from errors import services
from errors.models import ErrorReport
from tests.fixtures_errors import envelope_bytes, gz, make_event, post_envelope

pytestmark = pytest.mark.django_db

VALID = envelope_bytes(make_event())
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def hostile_bodies(draw: Any) -> tuple[bytes, str]:
    kind = draw(
        st.sampled_from(
            [
                "random",
                "truncated",
                "wrong_length",
                "huge_header",
                "bad_json",
                "odd_event",
                "encoded",
            ]
        )
    )
    if kind == "random":
        body = draw(st.binary(max_size=2000))
    elif kind == "truncated":
        body = VALID[: draw(st.integers(0, len(VALID) - 1))]
    elif kind == "wrong_length":
        payload = json.dumps(make_event()).encode()
        length = draw(st.one_of(st.integers(-5, len(payload) + 50), st.text(max_size=5), st.none()))
        header = json.dumps({"type": "event", "length": length}).encode()
        body = b'{"event_id":"' + b"a" * 32 + b'"}\n' + header + b"\n" + payload
    elif kind == "huge_header":
        body = b'{"x":"' + b"h" * draw(st.integers(8000, 20000)) + b'"}\n'
    elif kind == "bad_json":
        body = b"{}\n" + draw(st.binary(max_size=200)) + b"\n" + draw(st.binary(max_size=200))
    elif kind == "odd_event":
        event = draw(st.dictionaries(st.text(max_size=12), json_values, max_size=8))
        event["event_id"] = draw(st.sampled_from(["a" * 32, "zz", 5, None]))
        for key in ("exception", "breadcrumbs", "tags", "request", "timestamp", "fingerprint"):
            if draw(st.booleans()):
                event[key] = draw(json_values)
        payload = json.dumps(event).encode()
        body = (
            b"{}\n"
            + json.dumps({"type": "event", "length": len(payload)}).encode()
            + b"\n"
            + payload
        )
    else:
        raw = draw(st.binary(max_size=500))
        encoding = draw(st.sampled_from(["gzip", "deflate", "br", "zstd", "identity"]))
        return raw, encoding
    encoding = draw(st.sampled_from(["", "gzip", "br", "deflate"]))
    if encoding == "gzip":
        body = gz(body)
    elif encoding == "br":
        body = brotli.compress(body)
    elif encoding == "deflate":
        body = zlib.compress(body)
    return body, encoding


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(hostile=hostile_bodies(), key_kind=st.sampled_from(["right", "wrong", "none", "garbage"]))
def test_fuzzed_ingest_answers_4xx_never_5xx_and_keeps_valid_events(
    client, project, hostile, key_kind
):
    proj, key = project
    if proj.rate_limit_per_minute:
        proj.rate_limit_per_minute = 0
        proj.save()
    body, encoding = hostile
    auth = {"right": key, "wrong": "0" * 32, "none": None, "garbage": "\u2603" * 300}[key_kind]
    response = post_envelope(client, proj.pk, body, key=auth, encoding=encoding)
    assert response.status_code < 500
    assert response.status_code == 200 or 400 <= response.status_code < 500

    valid = make_event()
    ok = post_envelope(client, proj.pk, gz(envelope_bytes(valid)), key=key, encoding="gzip")
    assert ok.status_code == 200
    services.digest()
    assert ErrorReport.objects.filter(event_id=valid["event_id"]).exists()
