"""Hostile ingest input is bounded before it is trusted: decompression bombs, authentication
before decoding, and JSON built to break parsers. Each refusal is a 4xx with a short reason,
never a 500 and never an error event of our own.

What the code before these tests (commit 2e33f06) did with the same input, in kind (the
measured memory and CPU are in docs/PERFORMANCE.md, "Hostile ingest and scrubbing before their
bounds"):
- brotli bombs were decoded a slice of input at a time, each slice in one call, and gzip /
  zlib / raw deflate bombs inflated in one call up to the cap, then copied;
- bombs of bare zeros were inflated to the 64 MiB default cap;
- an envelope naming its key only in its `dsn` header was inflated up to the cap before the
  key was looked at: a wrong key with a bomb answered 413 (not 403);
- 100,000 `[` in an event (orjson refuses, then json.loads raises RecursionError) and deep
  nesting in a header line (json.loads' RecursionError) were 500s, reported as our own errors;
- a header with a key twice (two event_ids, two types) was accepted;
- an event with lone surrogate escapes was accepted and then failed the worker's whole batch
  ("invalid input syntax for type json"), taking the other events of the batch with it;
- bodies of a few KiB holding 16 MiB of blank lines or 700k tiny items were parsed to the end
  (now 413 after 1,000 lines);
- the X-Sentry-Error header of a reason with a non-ASCII character was MIME-encoded.
Malformed lengths, truncated items, invalid UTF-8, numbers past the 4300-digit limit and headers
that are not objects were already 400s; their cases here keep them so.
"""

from __future__ import annotations

import json
import struct
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from functools import cache
from typing import Any

import brotli
import pytest
from django.core.signals import got_request_exception
from django.test import Client, override_settings

from errors.ingest import (
    MAX_DROPPED_TYPES,
    MAX_ITEMS,
    MAX_JSON_DEPTH,
    Limits,
    json_depth,
    parse_envelope,
)
from errors.models import ErrorReport, InboxEvent
from errors.services import digest
from tests.fixtures_errors import envelope_bytes, gz, make_event, post_envelope

pytestmark = pytest.mark.django_db

MIB = 2**20
CAP = 16 * MIB  # OPS_ERRORS_MAX_DECOMPRESSED_BYTES in the bomb tests
BOMB_MIB = 1024  # each bomb inflates to 1 GiB
ATTACHMENT = b'{"type":"attachment"}\n'


@cache
def bomb(encoding: str, first_line: bytes = b"{}") -> bytes:
    """An envelope whose attachment is 1 GiB of zeros, compressed; built without ever
    holding the GiB (1 MiB at a time)."""
    prefix = first_line + b"\n" + ATTACHMENT
    zeros = bytes(MIB)
    if encoding == "br":
        compressor = brotli.Compressor(quality=4)
        parts = [compressor.process(prefix)]
        parts += [compressor.process(zeros) for _ in range(BOMB_MIB)]
        return b"".join(parts) + compressor.finish()
    # Deflate: after a full flush each MiB of zeros compresses to the same block, so one
    # block repeated makes the stream; the checksums are computed over the real content.
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = deflater.compress(prefix + zeros) + deflater.flush(zlib.Z_FULL_FLUSH)
    block = deflater.compress(zeros) + deflater.flush(zlib.Z_FULL_FLUSH)
    assert block == deflater.compress(zeros) + deflater.flush(zlib.Z_FULL_FLUSH)
    raw = head + block * (BOMB_MIB - 1) + deflater.flush()
    size = len(prefix) + BOMB_MIB * MIB
    if encoding == "deflate-raw":
        return raw
    crc, adler = zlib.crc32(prefix), zlib.adler32(prefix)
    for _ in range(BOMB_MIB):
        crc, adler = zlib.crc32(zeros, crc), zlib.adler32(zeros, adler)
    if encoding == "gzip":
        header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
        return header + raw + struct.pack("<II", crc, size % 2**32)
    return b"\x78\xda" + raw + struct.pack(">I", adler)  # deflate, zlib-wrapped (RFC 1950)


def test_the_bombs_are_what_they_claim() -> None:
    # Checked once on the smallest: it decodes to the envelope, 1 GiB of zeros included.
    inflater = zlib.decompressobj(-15)
    body, total = bomb("deflate-raw"), 0
    while not inflater.eof:
        total += len(inflater.decompress(body, 16 * MIB))
        body = inflater.unconsumed_tail
    assert total == len(b"{}\n" + ATTACHMENT) + 2**30
    assert len(bomb("gzip")) < 2 * MIB and len(bomb("br")) < 4096


def wire_encoding(encoding: str) -> str:
    return "deflate" if encoding.startswith("deflate") else encoding


@pytest.fixture(name="hostile")
def hostile_fixture() -> Iterator[dict[str, Any]]:
    """A client that answers a crash with a 500 instead of raising it, and the record of
    Django's got_request_exception (fired for every 500, and what our own capture listens to)."""
    seen: dict[str, Any] = {"client": Client(raise_request_exception=False), "crashes": []}

    def crashed(sender: Any, request: Any = None, **kwargs: Any) -> None:
        seen["crashes"].append(request)

    got_request_exception.connect(crashed, dispatch_uid="hostile-ingest-test")
    yield seen
    got_request_exception.disconnect(dispatch_uid="hostile-ingest-test")


def refused(response: Any, hostile: dict[str, Any], status: int) -> str:
    """The response is `status` with a short one-line reason, and nothing was kept, crashed or
    reported as our own error (even after the worker ran)."""
    assert response.status_code == status, response.content[:300]
    reason = response.json()["detail"]
    assert 0 < len(reason) <= 120 and "\n" not in reason
    assert response["X-Sentry-Error"] == reason.encode("ascii", "backslashreplace").decode()
    assert hostile["crashes"] == []
    assert not InboxEvent.objects.exists()
    digest()
    assert not ErrorReport.objects.exists()
    return reason


def peak_while(send: Any) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        response = send()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return response, peak


# --- decompression -------------------------------------------------------------------------
@override_settings(OPS_ERRORS_MAX_DECOMPRESSED_BYTES=CAP)
@pytest.mark.parametrize("encoding", ["br", "gzip", "deflate", "deflate-raw"])
def test_a_1_gib_bomb_is_refused_with_413_within_the_cap_and_a_few_mib(project, hostile, encoding):
    proj, key = project
    body = bomb(encoding)
    response, peak = peak_while(
        lambda: post_envelope(
            hostile["client"], proj.pk, body, key=key, encoding=wire_encoding(encoding)
        )
    )
    reason = refused(response, hostile, 413)
    assert reason == f"body exceeds {CAP} bytes decompressed"
    assert peak < CAP + 4 * MIB, f"peak {peak / MIB:.1f} MiB"
    # Decoded in steps and never held: the body (request copies included) and a few steps.
    assert peak < 6 * len(body) + 4 * MIB, f"peak {peak / MIB:.1f} MiB"


@pytest.mark.parametrize("encoding", ["br", "gzip", "deflate", "deflate-raw"])
def test_a_bomb_of_bare_zeros_is_refused_at_the_first_line(project, hostile, encoding):
    proj, key = project
    if encoding == "br":
        body = brotli.compress(bytes(64 * MIB), quality=1)
    else:
        wbits = {"gzip": 31, "deflate": 15, "deflate-raw": -15}[encoding]
        deflater = zlib.compressobj(9, zlib.DEFLATED, wbits)
        body = b"".join(deflater.compress(bytes(MIB)) for _ in range(64)) + deflater.flush()
    response, peak = peak_while(
        lambda: post_envelope(
            hostile["client"], proj.pk, body, key=key, encoding=wire_encoding(encoding)
        )
    )
    assert refused(response, hostile, 400) == "envelope header longer than 8192 bytes"
    assert peak < 6 * len(body) + 4 * MIB, f"peak {peak / MIB:.1f} MiB"


# --- authentication before decoding ----------------------------------------------------------
def dsn_line(key: str, project_id: int) -> bytes:
    return json.dumps({"dsn": f"http://{key}@testserver/{project_id}"}).encode()


@override_settings(OPS_ERRORS_MAX_DECOMPRESSED_BYTES=CAP)
@pytest.mark.parametrize("encoding", ["br", "gzip"])
def test_a_wrong_dsn_key_with_a_bomb_is_refused_403_before_the_bomb_is_inflated(
    project, hostile, encoding
):
    proj, _ = project
    body = bomb(encoding, dsn_line("f" * 32, proj.pk))
    response, peak = peak_while(
        lambda: post_envelope(hostile["client"], proj.pk, body, encoding=encoding)
    )
    assert "unknown project or key" in refused(response, hostile, 403)
    assert peak < 6 * len(body) + 4 * MIB, f"peak {peak / MIB:.1f} MiB"


@override_settings(OPS_ERRORS_MAX_DECOMPRESSED_BYTES=CAP)
@pytest.mark.parametrize("header", ["HTTP_X_SENTRY_AUTH", "HTTP_AUTHORIZATION", "query"])
def test_a_wrong_header_or_query_key_with_a_bomb_is_refused_403_unread(project, hostile, header):
    proj, _ = project
    body = bomb("br")
    wrong = "Sentry sentry_key=" + "f" * 32 + ", sentry_version=7"
    extra = {} if header == "query" else {header: wrong}
    query = "?sentry_key=" + "f" * 32 if header == "query" else ""
    response, peak = peak_while(
        lambda: hostile["client"].post(
            f"/api/{proj.pk}/envelope/{query}",
            data=body,
            content_type="application/x-sentry-envelope",
            HTTP_CONTENT_ENCODING="br",
            **extra,
        )
    )
    assert "unknown project or key" in refused(response, hostile, 403)
    assert peak < 4 * MIB, f"peak {peak / MIB:.1f} MiB"


@override_settings(OPS_ERRORS_MAX_DECOMPRESSED_BYTES=CAP)
def test_a_right_dsn_key_with_a_bomb_is_authenticated_then_refused_413(project, hostile):
    proj, key = project
    body = bomb("gzip", dsn_line(key.public_key, proj.pk))
    response, peak = peak_while(
        lambda: post_envelope(hostile["client"], proj.pk, body, encoding="gzip")
    )
    assert refused(response, hostile, 413) == f"body exceeds {CAP} bytes decompressed"
    assert peak < 6 * len(body) + 4 * MIB, f"peak {peak / MIB:.1f} MiB"


@pytest.mark.parametrize("encoding", ["br", "gzip", "deflate"])
def test_a_compressed_envelope_authenticated_by_its_dsn_is_accepted(client, project, encoding):
    proj, key = project
    event = make_event()
    header = {"event_id": event["event_id"], "dsn": f"http://{key.public_key}@testserver/{proj.pk}"}
    payload = json.dumps(event).encode()
    data = b"\n".join([json.dumps(header).encode(), b'{"type":"event"}', payload])
    body = {"br": brotli.compress, "gzip": gz, "deflate": zlib.compress}[encoding](data)
    response = post_envelope(client, proj.pk, body, encoding=encoding)
    assert response.status_code == 200, response.content
    assert InboxEvent.objects.filter(project=proj, event_id=event["event_id"]).exists()


def test_the_store_endpoint_without_a_key_is_refused_403(project, hostile):
    proj, _ = project
    body = json.dumps(make_event()).encode()
    response = post_envelope(hostile["client"], proj.pk, body, endpoint="store")
    assert "sentry_key" in refused(response, hostile, 403)


# --- parsing ---------------------------------------------------------------------------------
def event_item(payload: bytes, *, length: object = "auto") -> bytes:
    header: dict[str, Any] = {"type": "event"}
    if length == "auto":
        header["length"] = len(payload)
    elif length is not None:
        header["length"] = length
    return json.dumps(header).encode() + b"\n" + payload


ID = "a" * 32
HEAD = json.dumps({"event_id": ID}).encode()
EVENT = json.dumps(make_event(event_id=ID)).encode()
NEST = 100_000
HOSTILE: dict[str, tuple[bytes, int, str]] = {
    # deep nesting
    "event nested 100k deep": (
        HEAD + b"\n" + event_item(b"[" * NEST + b"]" * NEST),
        400,
        f"event item nests deeper than {MAX_JSON_DEPTH} levels",
    ),
    "event nested 100k deep, never closed": (
        HEAD + b"\n" + event_item(b"{" + b'"a":[' * NEST),
        400,
        f"event item nests deeper than {MAX_JSON_DEPTH} levels",
    ),
    "event nested within the parsers' own limits": (
        HEAD + b"\n" + event_item(b'{"a":' + b"[" * 900 + b"]" * 900 + b"}"),
        400,
        f"event item nests deeper than {MAX_JSON_DEPTH} levels",
    ),
    "envelope header nested 4000 deep": (
        b'{"a":' + b"[" * 4000 + b"]" * 4000 + b"}\n",
        400,
        f"envelope header nests deeper than {MAX_JSON_DEPTH} levels",
    ),
    "item header nested 4000 deep": (
        b'{}\n{"type":"session","a":' + b"[" * 4000 + b"]" * 4000 + b"}\n{}\n",
        400,
        f"item header nests deeper than {MAX_JSON_DEPTH} levels",
    ),
    # huge numbers
    "event with a 100,000-digit integer": (
        HEAD + b"\n" + event_item(b'{"n":1' + b"0" * 100_000 + b"}"),
        400,
        "event item is not valid JSON",
    ),
    "header with a 5,000-digit integer": (
        b'{"n":1' + b"0" * 5000 + b"}\n",
        400,
        "envelope header is not valid JSON",
    ),
    "item length of 5,000 digits": (
        HEAD + b'\n{"type":"event","length":1' + b"0" * 5000 + b"}\n" + EVENT,
        400,
        "item header is not valid JSON",
    ),
    "item length 1e400": (
        HEAD
        + b"\n"
        + event_item(EVENT, length=None).replace(b'"event"}', b'"event","length":1e400}'),
        400,
        "item length is not a non-negative integer",
    ),
    "event length of 10**30": (
        HEAD + b"\n" + event_item(EVENT, length=10**30),
        413,
        "event item exceeds 1048576 bytes",
    ),
    # invalid UTF-8
    "invalid UTF-8 in the envelope header": (
        b'{"dsn":"\xff\xfe"}\n',
        400,
        "envelope header is not valid JSON",
    ),
    "invalid UTF-8 in an item header": (
        b'{}\n{"type":"sess\xc3\x28"}\n{}\n',
        400,
        "item header is not valid JSON",
    ),
    "invalid UTF-8 in the event": (
        HEAD + b"\n" + event_item(EVENT[:-1] + b',"x":"\xed\xa0\x80"}'),
        400,
        "event item is not valid JSON",
    ),
    # duplicate keys
    "two event_ids in the envelope header": (
        b'{"event_id":"' + b"a" * 32 + b'","event_id":"' + b"b" * 32 + b'"}\n' + event_item(EVENT),
        400,
        "envelope header has a duplicate key",
    ),
    "two types in an item header": (
        HEAD + b'\n{"type":"attachment","type":"event"}\n' + EVENT + b"\n",
        400,
        "item header has a duplicate key",
    ),
    # truncated items and lengths that lie
    "event item cut short": (
        HEAD + b"\n" + event_item(EVENT)[:-10],
        400,
        "item shorter than its declared length",
    ),
    "attachment cut short": (
        b'{}\n{"type":"attachment","length":1000000}\nabc',
        400,
        "item shorter than its declared length",
    ),
    "length too short": (
        HEAD + b"\n" + event_item(EVENT, length=len(EVENT) - 5),
        400,
        "item longer than its declared length",
    ),
    "length negative": (
        HEAD + b"\n" + event_item(EVENT, length=-1),
        400,
        "item length is not a non-negative integer",
    ),
    "length a string": (
        HEAD + b"\n" + event_item(EVENT, length=str(len(EVENT))),
        400,
        "item length is not a non-negative integer",
    ),
    "length a float": (
        HEAD + b"\n" + event_item(EVENT, length=len(EVENT) + 0.5),
        400,
        "item length is not a non-negative integer",
    ),
    "length true": (
        b'{}\n{"type":"attachment","length":true}\nx\n',
        400,
        "item length is not a non-negative integer",
    ),
    # mixed item types
    "two event items": (
        HEAD + b"\n" + event_item(EVENT) + b"\n" + event_item(EVENT),
        400,
        "more than one event item in the envelope",
    ),
    "an item type that is a number": (b'{}\n{"type":5}\n{}\n', 400, "item header has no type"),
    "an item type that is an object": (
        b'{}\n{"type":{"a":1}}\n{}\n',
        400,
        "item header has no type",
    ),
    "an empty item type": (b'{}\n{"type":""}\n{}\n', 400, "item header has no type"),
    # headers that are not objects
    "envelope header an array": (b"[]\n", 400, "envelope header is not a JSON object"),
    "envelope header a string": (b'"{}"\n', 400, "envelope header is not a JSON object"),
    "envelope header null": (b"null\n", 400, "envelope header is not a JSON object"),
    "envelope header Infinity": (b"Infinity\n", 400, "envelope header is not a JSON object"),
    "item header an array": (b'{}\n["event"]\n{}\n', 400, "item header is not a JSON object"),
    "event an array": (HEAD + b"\n" + event_item(b"[]"), 400, "event item is not a JSON object"),
    "event a number": (HEAD + b"\n" + event_item(b"1e400"), 400, "event item is not a JSON object"),
    "empty body": (b"", 400, "envelope header is not valid JSON"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_envelopes_get_a_4xx_with_a_short_reason_and_no_error_of_our_own(
    project, hostile, case
):
    proj, key = project
    body, status, reason = HOSTILE[case]
    response = post_envelope(hostile["client"], proj.pk, body, key=key)
    assert refused(response, hostile, status) == reason


@pytest.mark.parametrize(
    "body,reason",
    [
        (b"[" * NEST + b"]" * NEST, f"event item nests deeper than {MAX_JSON_DEPTH} levels"),
        (b'{"n":1' + b"0" * 100_000 + b"}", "event item is not valid JSON"),
        (b'{"x":"\xff"}', "event item is not valid JSON"),
        (b"[]", "event item is not a JSON object"),
    ],
)
def test_hostile_store_bodies_get_a_400(project, hostile, body, reason):
    proj, key = project
    response = post_envelope(hostile["client"], proj.pk, body, key=key, endpoint="store")
    assert refused(response, hostile, 400) == reason


def test_a_deep_event_inside_gzip_is_refused_after_bounded_inflation(project, hostile):
    proj, key = project
    body = gz(HEAD + b"\n" + event_item(b"[" * NEST + b"]" * NEST))
    response = post_envelope(hostile["client"], proj.pk, body, key=key, encoding="gzip")
    assert refused(response, hostile, 400) == (
        f"event item nests deeper than {MAX_JSON_DEPTH} levels"
    )


def test_brackets_inside_strings_do_not_count_as_depth(client, project, hostile):
    proj, key = project
    event = make_event(message="[" * 5000 + '{"\\"' + "]" * 10, extra={"deep": [[[[["ok"]]]]]})
    response = post_envelope(client, proj.pk, envelope_bytes(event), key=key)
    assert response.status_code == 200, response.content
    digest()
    assert ErrorReport.objects.get(event_id=event["event_id"]).project_id == proj.pk


def test_nan_infinity_and_overflowing_floats_are_accepted_like_sentry_sdk_writes_them(
    project, hostile
):
    # Python's json (so sentry-sdk) writes NaN and Infinity; 1e400 parses as Infinity too.
    proj, key = project
    event = EVENT[:-1] + b',"extra":{"a":NaN,"b":Infinity,"c":-Infinity,"d":1e400,"e":-1e400}}'
    body = HEAD + b"\n" + event_item(event)
    response = post_envelope(hostile["client"], proj.pk, body, key=key)
    assert response.status_code == 200, response.content
    digest()
    assert list(ErrorReport.objects.values_list("project_id", "event_id")) == [(proj.pk, ID)]
    assert hostile["crashes"] == []


def test_an_event_mixed_with_other_items_keeps_only_the_event(project, hostile):
    proj, key = project
    body = (
        HEAD
        + b'\n{"type":"transaction","length":2}\n{}\n'
        + event_item(EVENT)
        + b'\n{"type":"attachment","length":3}\nabc\n{"type":"session"}\n{"sid":"x"}\n'
    )
    response = post_envelope(hostile["client"], proj.pk, body, key=key)
    assert response.status_code == 200, response.content
    assert response.json() == {"id": ID}
    assert InboxEvent.objects.count() == 1
    assert hostile["crashes"] == []


def test_lone_surrogate_escapes_are_stored_replaced_and_do_not_break_the_digest(project, hostile):
    # Python's json writes "\\udcff" for an undecodable file name; orjson and PostgreSQL both
    # refuse such a string, and one such event used to fail the worker's whole batch.
    proj, key = project
    event = EVENT[:-1] + b',"message":"x\\ud800 \\udcff","tags":{"t\\udcff":"v"}}'
    other = make_event()
    for body in (HEAD + b"\n" + event_item(event), envelope_bytes(other)):
        response = post_envelope(hostile["client"], proj.pk, body, key=key)
        assert response.status_code == 200, response.content
    digest()
    report = ErrorReport.objects.get(event_id=ID)
    assert report.tags.get("t?") == "v", report.tags
    assert ErrorReport.objects.filter(event_id=other["event_id"]).exists()
    assert hostile["crashes"] == []


@pytest.mark.parametrize(
    "filler",
    [b"\n" * (16 * MIB), b'{"type":"session"}\n{}\n' * 700_000],
    ids=["16 MiB of blank lines", "700k tiny items"],
)
def test_an_envelope_of_countless_lines_is_refused_413_at_the_item_cap(project, hostile, filler):
    proj, key = project
    body = gz(HEAD + b"\n" + filler)
    started = time.monotonic()
    response = post_envelope(hostile["client"], proj.pk, body, key=key, encoding="gzip")
    elapsed = time.monotonic() - started
    assert refused(response, hostile, 413) == f"more than {MAX_ITEMS} items in the envelope"
    assert elapsed < 2, f"{elapsed:.1f} s"


def test_dropped_item_types_are_counted_under_a_bounded_number_of_names():
    body = b"{}\n" + b"".join(b'{"type":"t%d"}\n{}\n' % n for n in range(400))
    limits = Limits(max_compressed=MIB, max_decompressed=MIB, max_event=MIB, max_header=8192)
    dropped = parse_envelope(body, limits).dropped
    assert len(dropped) == MAX_DROPPED_TYPES + 1
    assert dropped["other"] == 400 - MAX_DROPPED_TYPES and dropped["t0"] == 1


@pytest.mark.parametrize(
    "text,depth",
    [
        (b"1", 0),
        (b"[]", 1),
        (b'{"a":[{"b":[]}]}', 4),
        (b'["[[[", "]]]]]]"]', 1),
        (b'["\\"[[[", "\\\\", [[]]]', 3),
        (b'{"k\\\\\\"[": ["\\\\\\\\"], "x": {"y": "}}}}"}}', 2),
        (b'"\\u005b\\u005b"', 0),
        (b"[" * 3 + b'"unterminated [[[[', 3),
    ],
)
def test_the_depth_scan_counts_brackets_outside_strings_only(text, depth):
    assert json_depth(text) == depth
