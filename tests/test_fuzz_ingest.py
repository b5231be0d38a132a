"""Generated hostile traffic on /api/<id>/envelope/ and /api/<id>/store/: never a 5xx, and the
valid events sent between the hostile ones are all stored once the digest has run.

Cases: CASES["envelope"] + CASES["store"] (tests/fuzz_support.py), derandomized. Besides random
bytes and broken framing, the generators build what an attacker would: compression bombs,
JSON nested past any parser's depth, 1 MiB strings, numbers no double holds, lone surrogates
and NUL characters, wrong types at every field the digest reads, odd keys, DSNs and encodings.
"""

from __future__ import annotations

import gzip
import json
import uuid
import zlib
from collections import Counter
from functools import cache
from typing import Any

import brotli
import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from errors import services
from errors.models import ErrorReport, InboxEvent
from tests.fixtures_errors import auth_header, envelope_bytes, make_event
from tests.fuzz_support import CASES, fuzz_settings

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

MiB = 2**20


# --- heavy bodies, built once --------------------------------------------------------------
@cache
def bombs() -> list[tuple[bytes, str]]:
    """Compressed bodies that expand past the 64 MiB decompression cap, or close under it."""
    zeros = b"\0" * (65 * MiB)
    nested = b"[" * (8 * MiB)
    return [
        (gzip.compress(zeros, compresslevel=9), "gzip"),
        (zlib.compress(zeros, 9), "deflate"),
        (brotli.compress(zeros, quality=5), "br"),
        (gzip.compress(b"{}\n" + nested, compresslevel=9), "gzip"),
        (brotli.compress(b'{}\n{"type":"event"}\n' + b"a" * (60 * MiB), quality=5), "br"),
        # gzip of gzip: only one layer is ever decoded.
        (gzip.compress(gzip.compress(zeros[: 8 * MiB])), "gzip"),
    ]


def deep(depth: int, opener: bytes = b"[", closer: bytes = b"]") -> bytes:
    return opener * depth + closer * depth


@cache
def pathological_strings() -> list[bytes]:
    """JSON string literals of about 1 MiB that are costly or awkward to decode."""
    n = MiB // 6
    return [
        json.dumps("a" * (MiB - 200)).encode(),
        b'"' + b"\\u0041" * n + b'"',
        b'"' + b"\\\\" * (MiB // 2 - 10) + b'"',
        json.dumps("\u2603" * (MiB // 3 - 100), ensure_ascii=False).encode(),
        b'"' + b"\\ud83d\\ude00" * (MiB // 12 - 10) + b'"',
        json.dumps("\n" * (MiB // 2 - 10)).encode(),
    ]


# --- values ----------------------------------------------------------------------------------
RAW_VALUES = [
    b"1e400",
    b"-1e400",
    b"1" + b"0" * 5000,
    b"NaN",
    b"Infinity",
    b"-0",
    b'"\\ud800"',
    b'"\\udfff\\ud800"',
    b'"a\\u0000b"',
    b'"\\u0000"',
    b"18446744073709551616",
    b"-9223372036854775809",
    b"[]",
    b"{}",
    b"null",
    b"true",
    b'""',
    b'"' + b"x" * 70_000 + b'"',
    deep(40),
    deep(900, b'{"a":', b"}"),
]
# Past orjson's depth limit (1024): the ingest's own depth scan refuses these with a 400.
DEEP_VALUES = [deep(1100), deep(3000, b'{"a":', b"}"), deep(20000)]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=15,
)
FIELDS = [
    "event_id", "timestamp", "level", "platform", "logger", "message", "logentry", "release",
    "environment", "server_name", "transaction", "fingerprint", "tags", "extra", "user",
    "request", "contexts", "breadcrumbs", "exception", "threads", "modules", "sdk", "dist",
]  # fmt: skip
NESTED = [
    ("exception", "values"),
    ("exception", "values", 0),
    ("exception", "values", 0, "type"),
    ("exception", "values", 0, "value"),
    ("exception", "values", 0, "mechanism"),
    ("exception", "values", 0, "stacktrace"),
    ("exception", "values", 0, "stacktrace", "frames"),
    ("exception", "values", 0, "stacktrace", "frames", 0),
    ("exception", "values", 0, "stacktrace", "frames", 0, "lineno"),
    ("exception", "values", 0, "stacktrace", "frames", 0, "function"),
    ("exception", "values", 0, "stacktrace", "frames", 0, "filename"),
    ("exception", "values", 0, "stacktrace", "frames", 0, "vars"),
    ("exception", "values", 0, "stacktrace", "frames", 0, "pre_context"),
    ("exception", "values", 0, "stacktrace", "frames", 0, "in_app"),
    ("tags", "team"),
]


def set_path(event: dict[str, Any], path: tuple[Any, ...], marker: str) -> None:
    target: Any = event
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = marker


@st.composite
def events(draw: st.DrawFn, kind: str = "") -> bytes:
    """A JSON event: sentry-shaped, with hostile values at fields the digest reads."""
    event: dict[str, Any] = make_event()
    marker = "__FUZZ_MARKER__"
    kind = kind or draw(
        st.sampled_from(weighted(field=40, nested=40, keys=10, id=10, random=10, big=2))
    )
    if kind == "field":
        event[draw(st.sampled_from(FIELDS))] = draw(json_values)
    elif kind == "nested":
        set_path(event, draw(st.sampled_from(NESTED)), marker)
    elif kind == "keys":
        for _ in range(draw(st.integers(1, 4))):
            event[draw(st.text(max_size=40))] = draw(json_values)
    elif kind == "id":
        event["event_id"] = draw(
            st.sampled_from(
                [
                    str(uuid.uuid4()),
                    uuid.uuid4().hex.upper(),
                    "0" * 32,
                    "g" * 32,
                    "a" * 31,
                    "-" * 40 + "a" * 32,
                    "\uff10" * 32,
                ]
            )
            | st.text(max_size=40)
        )
    elif kind == "random":
        event = draw(st.dictionaries(st.text(max_size=12), json_values, max_size=8))
        event["event_id"] = uuid.uuid4().hex
    elif kind == "big":
        set_path(event, draw(st.sampled_from([("message",), *NESTED[3:5], *NESTED[8:11]])), marker)
    text = json.dumps(event)
    if kind in ("nested", "big"):
        raw = (
            draw(st.sampled_from(RAW_VALUES))
            if kind == "nested"
            else draw(st.sampled_from(pathological_strings()))
        )
        text_bytes = text.encode().replace(json.dumps(marker).encode(), raw, 1)
        return text_bytes
    if kind == "field" and draw(st.booleans()):
        # A hostile raw value in place of a whole top-level field.
        field = draw(st.sampled_from(FIELDS))
        event[field] = marker
        return (
            json.dumps(event)
            .encode()
            .replace(json.dumps(marker).encode(), draw(st.sampled_from(RAW_VALUES)), 1)
        )
    return text.encode()


def weighted(**weights: int) -> list[str]:
    """Kinds repeated by weight, so costly ones (bombs, 1 MiB strings) stay rare."""
    return [kind for kind, weight in weights.items() for _ in range(weight)]


def item(payload: bytes, **header: Any) -> bytes:
    return (
        json.dumps({"type": "event", "length": len(payload), **header}).encode() + b"\n" + payload
    )


@st.composite
def envelope_bodies(draw: st.DrawFn, key: str) -> tuple[bytes, str]:
    """(body, Content-Encoding) for /envelope/."""
    kind = draw(
        st.sampled_from(
            weighted(event=180, framing=30, random=30, header=20, items=10, dsn=25, bomb=2, big=3)
        )
    )
    if kind == "bomb":
        return draw(st.sampled_from(bombs()))
    if kind == "random":
        return draw(st.binary(max_size=3000)), draw(encodings())
    header: dict[str, Any] = {"event_id": uuid.uuid4().hex}
    if kind in ("event", "big"):
        payload = draw(events("big" if kind == "big" else ""))
        with_length = draw(st.booleans())
        head = json.dumps(header).encode() + b"\n"
        body = head + item(payload) if with_length else head + b'{"type":"event"}\n' + payload
        return compress(body, draw(encodings()))
    if kind == "framing":
        payload = json.dumps(make_event()).encode()
        length = draw(
            st.sampled_from([-1, 0, len(payload) - 1, len(payload) + 1, 2**64, 1.5, "12", True])
            | st.integers(-10, 10**6)
        )
        item_header: dict[str, Any] = {
            "type": draw(st.sampled_from(["event", "", 5, None, "transaction"]))
        }
        item_header["length"] = length
        body = (
            json.dumps(header).encode()
            + b"\n"
            + json.dumps(item_header).encode()
            + b"\n"
            + payload[: draw(st.integers(0, len(payload)))]
            + draw(st.sampled_from([b"", b"\n", b"\n\n", b"\r\n", b"\ngarbage"]))
        )
        return compress(body, draw(encodings()))
    if kind == "header":
        raw = draw(st.sampled_from(RAW_VALUES))
        body = b'{"event_id":' + raw + b"}\n" + item(json.dumps(make_event()).encode())
        if draw(st.booleans()):
            body = raw + b"\n" + item(json.dumps(make_event()).encode())
        return compress(body, draw(encodings()))
    if kind == "items":
        count = draw(st.sampled_from([2, 50, 5000]))
        other = json.dumps({"type": "attachment", "length": 3}).encode() + b"\nabc\n"
        body = json.dumps(header).encode() + b"\n" + other * count
        if draw(st.booleans()):
            body += item(json.dumps(make_event()).encode()) * draw(st.sampled_from([1, 2]))
        return compress(body, draw(encodings()))
    # kind == "dsn": the key travels in the envelope header instead of X-Sentry-Auth.
    dsn = draw(
        st.sampled_from(
            [
                f"http://{key}@testserver/1",
                "http://[::1",
                "http://%zz@x/1",
                "://",
                f"http://{key}:{'p' * 5000}@h/1",
            ]
        )
        | st.text(max_size=60)
        | st.integers()
    )
    body = json.dumps({**header, "dsn": dsn}).encode() + b"\n" + item(draw(events()))
    return compress(body, draw(encodings()))


def encodings() -> st.SearchStrategy[str]:
    return st.sampled_from(
        ["", "", "gzip", "deflate", "br", "identity", "GZIP ", "zstd", "gzip, br"]
    )


def compress(body: bytes, encoding: str) -> tuple[bytes, str]:
    name = encoding.strip().lower()
    if name == "gzip":
        return gzip.compress(body, compresslevel=1), encoding
    if name == "deflate":
        return zlib.compress(body, 1), encoding
    if name == "br":
        return brotli.compress(body, quality=1), encoding
    return body, encoding


@st.composite
def store_bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    kind = draw(st.sampled_from(weighted(event=200, raw=40, random=40, bomb=2)))
    if kind == "bomb":
        return draw(st.sampled_from(bombs()))
    if kind == "random":
        return draw(st.binary(max_size=3000)), draw(encodings())
    if kind == "raw":
        return compress(draw(st.sampled_from(RAW_VALUES)), draw(encodings()))
    return compress(draw(events()), draw(encodings()))


def auth_kinds() -> st.SearchStrategy[str]:
    return st.sampled_from(["header", "header", "header", "query", "none", "wrong", "garbage"])


def post(
    client: Any, path: str, body: bytes, encoding: str, auth: str, key: str, query: str
) -> Any:
    headers: dict[str, str] = {}
    if auth == "header":
        headers["HTTP_X_SENTRY_AUTH"] = auth_header(key)
    elif auth == "query":
        query = f"?sentry_key={key}&{query}"
    elif auth == "wrong":
        headers["HTTP_X_SENTRY_AUTH"] = auth_header("0" * 32)
    elif auth == "garbage":
        headers["HTTP_X_SENTRY_AUTH"] = "Sentry sentry_key=\u2603\0" + "," * 3000
    if encoding:
        headers["HTTP_CONTENT_ENCODING"] = encoding
    if query and not query.startswith("?"):
        query = "?" + query
    return client.post(
        path + query, data=body, content_type="application/x-sentry-envelope", **headers
    )


def run_fuzz(project: Any, endpoint: str, bodies: Any, cases: int) -> None:
    # A bug must come back as the 500 a real client sees, not as an exception in the test.
    client = Client(raise_request_exception=False)
    proj, key = project
    proj.rate_limit_per_minute = 0
    proj.save()
    path = f"/api/{proj.pk}/{endpoint}/"
    sent: list[str] = []
    statuses: Counter[int] = Counter()
    errors: list[tuple[bytes, int, str, str, str]] = []
    count = 0

    @fuzz_settings(cases)
    @given(
        case=bodies(key.public_key) if endpoint == "envelope" else bodies(),
        auth=auth_kinds(),
        query=st.sampled_from(["", "sentry_version=7", "sentry_key=", "a=%ff%fe", "x=\u2603"]),
    )
    def one(case: tuple[bytes, str], auth: str, query: str) -> None:
        nonlocal count
        count += 1
        body, encoding = case
        response = post(client, path, body, encoding, auth, key.public_key, query)
        statuses[response.status_code] += 1
        if response.status_code >= 500:
            errors.append((body[:120], len(body), encoding, auth, query))
        assert response.status_code < 300 or response.status_code >= 400
        if count % 3 == 0:
            valid = make_event()
            data = envelope_bytes(valid) if endpoint == "envelope" else json.dumps(valid).encode()
            ok = post(client, path, gzip.compress(data), "gzip", "header", key.public_key, "")
            assert ok.status_code == 200, ok.content
            sent.append(valid["event_id"])

    one()
    print(f"{endpoint}: {count} generated cases, statuses {dict(sorted(statuses.items()))}")
    assert count >= cases * 0.95
    assert not errors, f"{len(errors)} cases answered 5xx, e.g. {errors[:5]}"
    services.digest()
    assert not InboxEvent.objects.filter(event_id__in=sent).exists()
    stored = set(ErrorReport.objects.filter(event_id__in=sent).values_list("event_id", flat=True))
    assert stored == set(sent), f"{len(set(sent) - stored)} of {len(sent)} valid events lost"


def test_fuzzed_envelopes_get_4xx_never_5xx_and_every_valid_event_is_stored(project):
    run_fuzz(project, "envelope", envelope_bodies, CASES["envelope"])


def test_fuzzed_store_bodies_get_4xx_never_5xx_and_every_valid_event_is_stored(project):
    run_fuzz(project, "store", store_bodies, CASES["store"])


def test_events_with_nan_nul_characters_and_lone_surrogates_are_stored_in_the_batch(project):
    """Found by the fuzz: each such event failed the whole digest batch and was dropped after
    its retries (NaN, NUL); a lone surrogate even raised past the event-by-event retry, so the
    inbox stopped draining for everyone."""
    proj, key = project
    client = Client(raise_request_exception=False)
    hostile = make_event()
    hostile["exception"]["values"][0].update(type="Bad\ud800Type", value="a\u0000b")
    hostile["tags"] = {"\udcff": "x\u0000"}
    hostile["contexts"] = {
        "app": {"ratio": float("nan"), "limits": [float("inf"), -float("inf")], "n": "__BIG__"}
    }
    valid = make_event()
    for event in (hostile, valid):
        body = json.dumps(event).encode().replace(b'"__BIG__"', b"-1e400")
        response = post(client, f"/api/{proj.pk}/store/", body, "", "header", key.public_key, "")
        assert response.status_code == 200
    assert services.digest() == 2
    stored = ErrorReport.objects.get(event_id=hostile["event_id"])
    # Lone surrogates become "?" as the ingest parses (errors.ingest); NUL becomes U+FFFD as the
    # digest stores.
    assert stored.exception_type == "Bad?Type"
    assert stored.message.endswith("a\ufffdb")
    assert stored.tags == {"?": "x\ufffd"}
    assert stored.contexts["app"] == {
        "ratio": "NaN",
        "limits": ["Infinity", "-Infinity"],
        "n": "-Infinity",
    }
    assert ErrorReport.objects.filter(event_id=valid["event_id"]).exists()
    assert not InboxEvent.objects.exists()


# Minimal inputs that answered 500 (RecursionError past orjson's depth limit) before the
# ingest scanned nesting depth itself.
@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("envelope", b"[" * 1100 + b"\n"),
        ("envelope", b"{}\n" + item(b"[" * 1100)),
        ("store", b"[" * 1100),
        ("store", b'{"event_id":"' + b"a" * 32 + b'","extra":' + b"[" * 1100 + b"]" * 1100 + b"}"),
    ],
    ids=["envelope-header", "envelope-event", "store-array", "store-extra"],
)
def test_deeply_nested_json_gets_a_4xx_not_a_500(project, endpoint, body):
    proj, key = project
    client = Client(raise_request_exception=False)
    response = post(client, f"/api/{proj.pk}/{endpoint}/", body, "", "header", key.public_key, "")
    assert 400 <= response.status_code < 500


@st.composite
def deep_bodies(draw: st.DrawFn, endpoint: str) -> tuple[bytes, str]:
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}"), (b'[{"b":', b"}]")]))
    nested = deep(draw(st.integers(1025, 60_000)), opener, closer)
    event = json.dumps(make_event(extra="__DEEP__")).encode().replace(b'"__DEEP__"', nested)
    if endpoint == "store":
        return compress(event, draw(encodings()))
    where = draw(st.sampled_from(["header", "item", "event"]))
    if where == "header":
        body = nested[:8000] + b"\n" + item(event)
    elif where == "item":
        body = b"{}\n" + nested[:8000] + b"\n"
    else:
        body = b"{}\n" + item(event)
    return compress(body, draw(encodings()))


@pytest.mark.parametrize("endpoint", ["store", "envelope"])
def test_an_event_id_with_a_trailing_newline_gets_a_4xx_not_a_503(project, endpoint):
    proj, key = project
    client = Client(raise_request_exception=False)
    event = json.dumps({"event_id": "a" * 32 + "\n"}).encode()
    body = event if endpoint == "store" else b"{}\n" + item(event)
    response = post(client, f"/api/{proj.pk}/{endpoint}/", body, "", "header", key.public_key, "")
    assert 400 <= response.status_code < 500


def test_fuzzed_deep_nesting_gets_4xx_never_5xx_and_every_valid_event_is_stored(project):
    half = CASES["deep"] // 2
    run_fuzz(project, "envelope", lambda key: deep_bodies("envelope"), half)
    run_fuzz(project, "store", lambda: deep_bodies("store"), CASES["deep"] - half)
