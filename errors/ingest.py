"""The Sentry ingest protocol: authentication, bounded decompression and envelope parsing.

Pure functions over bytes and headers, so the view stays a thin caller and the fuzz tests
exercise exactly what the endpoint runs. Every failure is an `IngestError` carrying the HTTP
status and a one-line reason.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any
from urllib.parse import urlsplit

import brotli
import orjson

EVENT_ID = re.compile(r"[0-9a-fA-F]{32}")
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


# Decoded bytes produced per step: a bomb is noticed within one step of passing the cap.
STEP = 64 * 1024
# Deeper JSON is refused before it is parsed: the parsers (and the worker's scrubbing) recurse
# once per level, and json.loads raises RecursionError near Python's limit (1000).
MAX_JSON_DEPTH = 100
# Lines an envelope may have outside item payloads (item headers and blank lines). SDKs send a
# handful; without a bound, a small compressed body of tiny items costs seconds of parsing.
MAX_ITEMS = 1000
# Distinct dropped item types counted by name; any further ones are counted as "other".
MAX_DROPPED_TYPES = 32


def _slices(body: bytes) -> Iterator[bytes]:
    for start in range(0, len(body), STEP):
        yield body[start : start + STEP]


def _inflate(body: bytes, wbits: int) -> Iterator[bytes]:
    inflater = zlib.decompressobj(wbits)
    data = body
    try:
        while not inflater.eof:
            out = inflater.decompress(data, STEP)
            data = inflater.unconsumed_tail
            if out:
                yield out
            elif not data:
                raise IngestError(400, "truncated compressed body")
    except zlib.error as exc:
        raise IngestError(400, f"cannot decompress body: {exc}") from None


def _unbrotli(body: bytes) -> Iterator[bytes]:
    decoder = brotli.Decompressor()
    try:
        # The decoder keeps the input it has not decoded yet; each call with empty input
        # yields the next bounded piece of output, until there is none.
        out = decoder.process(body, output_buffer_limit=STEP)
        while out:
            yield out
            out = decoder.process(b"", output_buffer_limit=STEP)
    except brotli.error as exc:
        raise IngestError(400, f"cannot decompress body: {exc}") from None
    if not decoder.is_finished():
        raise IngestError(400, "truncated brotli body")


def _zlib_wrapped(body: bytes) -> bool:
    """RFC 1950 header: method 8, window <= 32 KiB, header checksum divisible by 31."""
    return (
        len(body) >= 2
        and body[0] & 0x0F == 8
        and body[0] >> 4 <= 7
        and ((body[0] << 8 | body[1]) % 31 == 0)
    )


class BodyReader:
    """The request body, decoded on demand in steps of at most STEP bytes (a little more for
    brotli). Nothing is decoded before it is asked for, only the unread part of one step is
    held, and decoding past `limit` bytes in total raises 413."""

    def __init__(self, chunks: Iterable[bytes], limit: int) -> None:
        self._chunks = iter(chunks)
        self._limit = limit
        self._buf = b""
        self._pos = 0
        self._total = 0
        self.envelope_headers: dict[str, Any] | None = None

    def _fill(self) -> bool:
        """Make unread bytes available in _buf; False at the end of the body."""
        while self._pos >= len(self._buf):
            chunk = next(self._chunks, None)
            if chunk is None:
                return False
            self._total += len(chunk)
            if self._total > self._limit:
                raise IngestError(413, f"body exceeds {self._limit} bytes decompressed")
            self._buf, self._pos = chunk, 0
        return True

    def readline(self, limit: int, too_long: IngestError) -> bytes | None:
        """The next line without its newline, None at the end; `too_long` past `limit`."""
        parts: list[bytes] = []
        size = 0
        while self._fill():
            end = self._buf.find(b"\n", self._pos)
            stop = len(self._buf) if end == -1 else end
            size += stop - self._pos
            if size > limit:
                raise too_long
            parts.append(self._buf[self._pos : stop])
            if end != -1:
                self._pos = end + 1
                return b"".join(parts)
            self._pos = stop
        return b"".join(parts) if parts else None

    def skip_line(self) -> None:
        while self._fill():
            end = self._buf.find(b"\n", self._pos)
            if end != -1:
                self._pos = end + 1
                return
            self._pos = len(self._buf)

    def read(self, size: int) -> bytes:
        """Up to `size` bytes (fewer only at the end). Callers cap `size` first."""
        parts: list[bytes] = []
        while size > 0 and self._fill():
            piece = self._buf[self._pos : self._pos + size]
            self._pos += len(piece)
            size -= len(piece)
            parts.append(piece)
        return b"".join(parts)

    def skip(self, size: int) -> int:
        """Discard up to `size` bytes without keeping them; how many there were."""
        skipped = 0
        while skipped < size and self._fill():
            step = min(size - skipped, len(self._buf) - self._pos)
            self._pos += step
            skipped += step
        return skipped

    def peek(self) -> bytes:
        """The next byte, not consumed; b"" at the end."""
        return self._buf[self._pos : self._pos + 1] if self._fill() else b""


def open_body(body: bytes, encoding: str, limits: Limits) -> BodyReader:
    """A reader decoding the Content-Encoding lazily, never past `max_decompressed` bytes."""
    encoding = encoding.strip().lower()
    chunks: Iterator[bytes]
    if encoding in ("", "identity"):
        chunks = _slices(body)
    elif encoding in ("gzip", "x-gzip"):
        chunks = _inflate(body, zlib.MAX_WBITS | 16)
    elif encoding == "deflate":
        # RFC 1950 (zlib-wrapped) per spec; some clients send raw deflate (RFC 1951).
        chunks = _inflate(body, zlib.MAX_WBITS if _zlib_wrapped(body) else -zlib.MAX_WBITS)
    elif encoding == "br":
        chunks = _unbrotli(body)
    else:
        raise IngestError(415, f"unsupported Content-Encoding {encoding[:30]!r}")
    return BodyReader(chunks, limits.max_decompressed)


def _reader(source: bytes | BodyReader, limits: Limits) -> BodyReader:
    return source if isinstance(source, BodyReader) else BodyReader(_slices(source), len(source))


_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DEPTH_STEP = [0] * 256
for _open, _close in (b"[]", b"{}"):
    _DEPTH_STEP[_open], _DEPTH_STEP[_close] = 1, -1


def json_depth(data: bytes) -> int:
    """How deep arrays and objects nest, in linear passes and without recursion.
    Brackets inside strings do not count: once escaped backslashes and escaped quotes are
    gone, every other quote opens or closes a string."""
    unescaped = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside_strings = b"".join(unescaped.split(b'"')[::2])
    brackets = outside_strings.translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)))


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        raise _DuplicateKey
    return value


def _json_line(line: bytes, what: str, limits: Limits) -> dict[str, Any]:
    if len(line) > limits.max_header:
        raise IngestError(400, f"{what} longer than {limits.max_header} bytes")
    if json_depth(line) > MAX_JSON_DEPTH:
        raise IngestError(400, f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        # A header is read once here and trusted after; with two values for one key, which
        # one a reader sees would depend on its parser.
        value = json.loads(line, object_pairs_hook=_unique_keys)
    except _DuplicateKey:
        raise IngestError(400, f"{what} has a duplicate key") from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise IngestError(400, f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise IngestError(400, f"{what} is not a JSON object")
    return value


def envelope_header(source: BodyReader, limits: Limits) -> dict[str, Any]:
    """The envelope's first line, decoding no further than it (at most `max_header` bytes)."""
    if source.envelope_headers is None:
        line = source.readline(
            limits.max_header,
            IngestError(400, f"envelope header longer than {limits.max_header} bytes"),
        )
        source.envelope_headers = _json_line(line or b"", "envelope header", limits)
    return source.envelope_headers


def normalize_event_id(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.replace("-", "")
    return value.lower() if EVENT_ID.fullmatch(value) else None


def parse_envelope(source: bytes | BodyReader, limits: Limits) -> Envelope:
    """Parse an envelope as it is decoded; keep the (single) event item, count and skip
    everything else without holding it."""
    reader = _reader(source, limits)
    headers = envelope_header(reader, limits)
    envelope = Envelope(headers=headers)
    parsed: dict[str, Any] = {}
    too_long = IngestError(400, f"item header longer than {limits.max_header} bytes")
    lines = 0
    while (line := reader.readline(limits.max_header, too_long)) is not None:
        lines += 1
        if lines > MAX_ITEMS:
            raise IngestError(413, f"more than {MAX_ITEMS} items in the envelope")
        if not line.strip():
            continue
        item = _json_line(line, "item header", limits)
        item_type = item.get("type")
        if not isinstance(item_type, str) or not item_type:
            raise IngestError(400, "item header has no type")
        if item_type in EVENT_ITEM_TYPES:
            if envelope.event is not None:
                raise IngestError(400, "more than one event item in the envelope")
            payload = _item_payload(reader, item, limits, keep=True)
            envelope.event, parsed = _event_payload(payload, limits)
        else:
            _item_payload(reader, item, limits, keep=False)
            _count_dropped(envelope, item_type)
    if envelope.event is not None:
        envelope.event_id = _event_id(headers, parsed)
    return envelope


def _item_payload(reader: BodyReader, item: dict[str, Any], limits: Limits, *, keep: bool) -> bytes:
    """Read the payload that follows an item header when `keep` (an event, at most
    `max_event` bytes), else skip it without holding it; checks it against its `length`."""
    too_big = IngestError(413, f"event item exceeds {limits.max_event} bytes")
    length = item.get("length")
    if length is None:
        # No length: the payload runs to the next newline.
        if keep:
            return reader.readline(limits.max_event, too_big) or b""
        reader.skip_line()
        return b""
    if not isinstance(length, int) or isinstance(length, bool) or length < 0:
        raise IngestError(400, "item length is not a non-negative integer")
    payload = b""
    if keep:
        if length > limits.max_event:
            raise too_big
        payload = reader.read(length)
        got = len(payload)
    else:
        got = reader.skip(length)
    if got < length:
        raise IngestError(400, "item shorter than its declared length")
    after = reader.peek()
    if after not in (b"", b"\n"):
        raise IngestError(400, "item longer than its declared length")
    reader.skip(len(after))
    return payload


def _count_dropped(envelope: Envelope, item_type: str) -> None:
    name = item_type[:40]
    if name not in envelope.dropped and len(envelope.dropped) >= MAX_DROPPED_TYPES:
        name = "other"
    envelope.dropped[name] = envelope.dropped.get(name, 0) + 1


def _event_id(headers: dict[str, Any], parsed: dict[str, Any]) -> str:
    """The event's id: the envelope header's, else the event's own."""
    event_id = normalize_event_id(headers.get("event_id"))
    if event_id is None:
        event_id = normalize_event_id(parsed.get("event_id"))
    if event_id is None:
        raise IngestError(400, "event without a valid event_id")
    return event_id


def loads(data: bytes) -> Any:
    """Parse JSON with orjson (faster on large events: docs/PERFORMANCE.md), falling back to the
    standard library for what orjson refuses but Python's json (and so sentry-sdk) writes:
    NaN and Infinity among an event's local variables."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    # Strict UTF-8 (json.loads alone would let encoded surrogates through).
    value = json.loads(data.decode("utf-8"))
    # orjson refuses lone surrogate escapes ("\\udcff"), which Python's json writes for
    # undecodable file names; PostgreSQL refuses them too, so they become "?" here, for the
    # endpoint and the worker alike.
    text = json.dumps(value, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        value = json.loads(text.encode("utf-8", "replace"))
    return value


def _event_payload(payload: bytes, limits: Limits) -> tuple[bytes, dict[str, Any]]:
    if len(payload) > limits.max_event:
        raise IngestError(413, f"event item exceeds {limits.max_event} bytes")
    if json_depth(payload) > MAX_JSON_DEPTH:
        raise IngestError(400, f"event item nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        event = loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # ValueError includes integers past Python's 4300-digit conversion limit.
        raise IngestError(400, "event item is not valid JSON") from None
    if not isinstance(event, dict):
        raise IngestError(400, "event item is not a JSON object")
    return payload, event


def parse_store(source: bytes | BodyReader, limits: Limits) -> Envelope:
    """The legacy /store/ body: one JSON event."""
    reader = _reader(source, limits)
    payload, parsed = _event_payload(reader.read(limits.max_event + 1), limits)
    event_id = normalize_event_id(parsed.get("event_id"))
    if event_id is None:
        raise IngestError(400, "event without a valid event_id")
    return Envelope(headers={}, event=payload, event_id=event_id)
