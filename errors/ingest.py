"""The Sentry ingest protocol: authentication, bounded decompression and envelope parsing.

Pure functions over bytes and headers, so the view stays a thin caller and the fuzz tests
exercise exactly what the endpoint runs. Every failure is an `IngestError` carrying the HTTP
status and a one-line reason.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import brotli
import orjson

EVENT_ID = re.compile(r"^[0-9a-fA-F]{32}$")
# Items we accept and drop (SDK health data, performance data, attachments, ...).
EVENT_ITEM_TYPES = {"event"}


class IngestError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Limits:
    max_compressed: int
    max_decompressed: int
    max_event: int
    max_header: int


@dataclass
class Envelope:
    headers: dict[str, Any]
    event: bytes | None = None
    event_id: str | None = None
    dropped: dict[str, int] = field(default_factory=dict)


def parse_auth_header(value: str) -> dict[str, str]:
    """`Sentry sentry_key=k, sentry_version=7` -> {"sentry_key": "k", ...}."""
    value = value.strip()
    if value[:7].lower() == "sentry ":
        value = value[7:]
    parts: dict[str, str] = {}
    for part in value.split(","):
        key, sep, val = part.partition("=")
        if sep:
            parts[key.strip()] = val.strip()
    return parts


def key_from_dsn(dsn: object) -> str | None:
    if not isinstance(dsn, str):
        return None
    try:
        return urlsplit(dsn).username or None
    except ValueError:
        return None


def decompress(body: bytes, encoding: str, limits: Limits) -> bytes:
    """Decode the Content-Encoding, never producing more than `max_decompressed` bytes."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        data = body
    elif encoding in ("gzip", "x-gzip"):
        data = _inflate(body, zlib.MAX_WBITS | 16, limits)
    elif encoding == "deflate":
        # RFC 1950 (zlib-wrapped) per spec; some clients send raw deflate, so fall back to it.
        try:
            data = _inflate(body, zlib.MAX_WBITS, limits)
        except IngestError as exc:
            if exc.status == 413:
                raise
            data = _inflate(body, -zlib.MAX_WBITS, limits)
    elif encoding == "br":
        data = _unbrotli(body, limits)
    else:
        raise IngestError(415, f"unsupported Content-Encoding {encoding[:30]!r}")
    if len(data) > limits.max_decompressed:
        raise IngestError(413, f"body exceeds {limits.max_decompressed} bytes decompressed")
    return data


def _inflate(body: bytes, wbits: int, limits: Limits) -> bytes:
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limits.max_decompressed + 1)
        if len(out) > limits.max_decompressed or inflater.unconsumed_tail:
            raise IngestError(413, f"body exceeds {limits.max_decompressed} bytes decompressed")
        if not inflater.eof:
            raise IngestError(400, "truncated compressed body")
    except zlib.error as exc:
        raise IngestError(400, f"cannot decompress body: {exc}") from None
    return out


def _unbrotli(body: bytes, limits: Limits) -> bytes:
    decoder = brotli.Decompressor()
    out = bytearray()
    try:
        # Feed in slices so a bomb is caught after at most one slice's expansion.
        for start in range(0, len(body), 4096):
            out += decoder.process(body[start : start + 4096])
            if len(out) > limits.max_decompressed:
                raise IngestError(413, f"body exceeds {limits.max_decompressed} bytes decompressed")
        if not decoder.is_finished():
            raise IngestError(400, "truncated brotli body")
    except brotli.error as exc:
        raise IngestError(400, f"cannot decompress body: {exc}") from None
    return bytes(out)


def _json_line(line: bytes, what: str, limits: Limits) -> dict[str, Any]:
    if len(line) > limits.max_header:
        raise IngestError(400, f"{what} longer than {limits.max_header} bytes")
    try:
        value = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise IngestError(400, f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise IngestError(400, f"{what} is not a JSON object")
    return value


def normalize_event_id(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.replace("-", "")
    return value.lower() if EVENT_ID.match(value) else None


def parse_envelope(data: bytes, limits: Limits) -> Envelope:
    """Parse an envelope; keep the (single) event item, count everything else."""
    header_line, _, rest = data.partition(b"\n")
    headers = _json_line(header_line, "envelope header", limits)
    envelope = Envelope(headers=headers)
    parsed: dict[str, Any] = {}
    pos = 0
    while pos < len(rest):
        end = rest.find(b"\n", pos)
        line = rest[pos:] if end == -1 else rest[pos:end]
        pos = len(rest) if end == -1 else end + 1
        if not line.strip():
            continue
        item = _json_line(line, "item header", limits)
        item_type = item.get("type")
        if not isinstance(item_type, str) or not item_type:
            raise IngestError(400, "item header has no type")
        length = item.get("length")
        if length is None:
            end = rest.find(b"\n", pos)
            payload = rest[pos:] if end == -1 else rest[pos:end]
            pos = len(rest) if end == -1 else end + 1
        else:
            if not isinstance(length, int) or isinstance(length, bool) or length < 0:
                raise IngestError(400, "item length is not a non-negative integer")
            payload = rest[pos : pos + length]
            if len(payload) < length:
                raise IngestError(400, "item shorter than its declared length")
            pos += length
            if pos < len(rest):
                if rest[pos : pos + 1] != b"\n":
                    raise IngestError(400, "item longer than its declared length")
                pos += 1
        if item_type in EVENT_ITEM_TYPES:
            if envelope.event is not None:
                raise IngestError(400, "more than one event item in the envelope")
            envelope.event, parsed = _event_payload(payload, limits)
        else:
            envelope.dropped[item_type[:40]] = envelope.dropped.get(item_type[:40], 0) + 1
    if envelope.event is not None:
        event_id = normalize_event_id(headers.get("event_id"))
        if event_id is None:
            event_id = normalize_event_id(parsed.get("event_id"))
        if event_id is None:
            raise IngestError(400, "event without a valid event_id")
        envelope.event_id = event_id
    return envelope


def loads(data: bytes) -> Any:
    """Parse JSON with orjson (about twice as fast on a 27 KB event), falling back to the
    standard library for what orjson refuses but Python's json (and so sentry-sdk) writes:
    NaN and Infinity among an event's local variables."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def _event_payload(payload: bytes, limits: Limits) -> tuple[bytes, dict[str, Any]]:
    if len(payload) > limits.max_event:
        raise IngestError(413, f"event item exceeds {limits.max_event} bytes")
    try:
        event = loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise IngestError(400, "event item is not valid JSON") from None
    if not isinstance(event, dict):
        raise IngestError(400, "event item is not a JSON object")
    return payload, event


def parse_store(data: bytes, limits: Limits) -> Envelope:
    """The legacy /store/ body: one JSON event."""
    payload, parsed = _event_payload(data, limits)
    event_id = normalize_event_id(parsed.get("event_id"))
    if event_id is None:
        raise IngestError(400, "event without a valid event_id")
    return Envelope(headers={}, event=payload, event_id=event_id)
