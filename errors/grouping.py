"""Grouping events into issues. The key is versioned (`GROUPING_VERSION`) so the algorithm can
change later without merging old and new groups by accident.

Order: the client's `fingerprint` (with `{{ default }}` expanded) → exception type + in-app
frames (module + function) → exception type + normalized value → normalized message.

Linear time, whatever the event: every text is cut to the scrubber's bounds (at most
MAX_STRING_LENGTH characters, the last MAX_ITEMS frames) before a pattern sees it, and each
pattern does a bounded amount of work per starting position.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from errors.scrubbing import MAX_ITEMS, MAX_KEY_LENGTH, truncate

GROUPING_VERSION = 1

_UUID = r"\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b"
_VARIABLE_PARTS = [
    (re.compile(_UUID, re.I), "<uuid>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"\b(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}\b", re.I), "<ip>"),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<hex>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.I), "<hex>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
]  # fmt: skip


def normalize(text: str) -> str:
    """Replace the parts of a message that vary between occurrences of the same error."""
    text = truncate(text)
    for pattern, replacement in _VARIABLE_PARTS:
        text = pattern.sub(replacement, text)
    return text.strip()


def primary_exception(event: dict[str, Any]) -> dict[str, Any] | None:
    """The exception that was raised last (Sentry lists chained exceptions oldest first)."""
    exc = event.get("exception")
    values = exc.get("values") if isinstance(exc, dict) else exc
    if isinstance(values, list):
        for value in reversed(values):
            if isinstance(value, dict):
                return value
    return None


def frames_of(exception: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not exception:
        return []
    stacktrace = exception.get("stacktrace")
    frames = stacktrace.get("frames") if isinstance(stacktrace, dict) else None
    if not isinstance(frames, list):
        return []
    return [f for f in frames[-MAX_ITEMS:] if isinstance(f, dict)]


def exception_type(exception: dict[str, Any] | None) -> str:
    if not exception:
        return ""
    name = truncate(str(exception.get("type") or ""), MAX_KEY_LENGTH)
    module = exception.get("module")
    if isinstance(module, str) and module and module not in ("builtins", "__builtin__"):
        return f"{truncate(module, MAX_KEY_LENGTH)}.{name}"
    return name


def message_of(event: dict[str, Any], exception: dict[str, Any] | None) -> str:
    """The event's message, at most MAX_STRING_LENGTH characters."""
    return truncate(_message_of(event, exception))


def _message_of(event: dict[str, Any], exception: dict[str, Any] | None) -> str:
    if exception and exception.get("value") is not None:
        return str(exception.get("value"))
    logentry = event.get("logentry")
    if isinstance(logentry, dict):
        return str(logentry.get("formatted") or logentry.get("message") or "")
    message = event.get("message")
    if isinstance(message, dict):
        return str(message.get("formatted") or message.get("message") or "")
    return str(message or "")


def _default_components(event: dict[str, Any]) -> list[str]:
    exception = primary_exception(event)
    if exception:
        in_app = [f for f in frames_of(exception) if f.get("in_app")]
        parts = [exception_type(exception) or "<unknown>"]
        if in_app:
            for frame in in_app:
                where = _short(frame.get("module") or frame.get("filename") or "?")
                parts.append(normalize(f"{where}:{_short(frame.get('function') or '?')}"))
        else:
            parts.append(normalize(message_of(event, exception)))
        return parts
    return ["message", normalize(message_of(event, None))]


def fingerprint(event: dict[str, Any]) -> str:
    """A 64-character hex grouping key."""
    client = event.get("fingerprint")
    if isinstance(client, list) and client and all(isinstance(p, str) for p in client):
        components: list[str] = []
        for part in client[:MAX_ITEMS]:
            if part.replace(" ", "") == "{{default}}":
                components.extend(_default_components(event))
            else:
                components.append(truncate(part))
        key = ["fingerprint", *components]
    else:
        key = ["default", *_default_components(event)]
    raw = json.dumps([GROUPING_VERSION, key], ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()


def title_and_culprit(event: dict[str, Any]) -> tuple[str, str]:
    exception = primary_exception(event)
    message = message_of(event, exception)
    first_line = message.splitlines()[0] if message else ""
    if exception:
        name = str(exception.get("type") or "Error")
        title = f"{name}: {first_line}" if first_line else name
    else:
        title = first_line or "<no message>"
    culprit = _short(event.get("transaction") or "")
    if not culprit:
        frames = frames_of(exception)
        in_app = [f for f in frames if f.get("in_app")] or frames
        if in_app:
            last = in_app[-1]
            where = _short(last.get("module") or last.get("filename") or "?")
            culprit = f"{where} in {_short(last.get('function') or '?')}"
    return title[:255], culprit[:255]


def _short(value: object) -> str:
    """A name (module, function, transaction): the first MAX_KEY_LENGTH characters."""
    return truncate(str(value), MAX_KEY_LENGTH)
