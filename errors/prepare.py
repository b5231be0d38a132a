"""From an inbox row to an unsaved ErrorReport: read the payload, make it storable, scrub
what is kept and take out what grouping and the console need (errors/digest.py stores it)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from errors import grouping
from errors.ingest import loads
from errors.models import ErrorReport, InboxEvent
from errors.scrubbing import Scrubber
from errors.severity import SeverityRules

MAX_FRAMES = 100
MAX_BREADCRUMBS = 100
STORED_KEYS = (
    "event_id", "timestamp", "level", "platform", "release", "environment", "transaction",
    "exception", "logentry", "message", "fingerprint", "request", "tags", "breadcrumbs",
    "contexts", "user",
)  # fmt: skip
# What PostgreSQL cannot store although the ingest accepts it as Python's json (and so
# sentry-sdk) writes it: NaN and Infinity (jsonb refuses them), NUL (text and jsonb refuse it)
# and UTF-16 surrogates (a lone one cannot be encoded; Python writes them for surrogate-escaped
# file names). A payload that may hold one is cleaned before it is stored, so it neither fails
# the whole batch (the slow event-by-event path) nor is dropped after its retries.
# Numbers past a double's range (1e400, 400 digits) are read as infinity, so they count too.
UNSTORABLE = re.compile(
    rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})|NaN|Infinity|[0-9.][eE]\+?0*[1-9][0-9]{2}|[0-9]{300}"
)


@dataclass
class Prepared:
    row: InboxEvent
    fingerprint: str
    title: str
    culprit: str
    report: ErrorReport


def storable(value: Any) -> Any:
    """`value` with NUL characters and lone surrogates replaced by U+FFFD, in keys and values,
    and non-finite numbers written as the strings "NaN", "Infinity" and "-Infinity"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str):
        if "\0" in value:
            value = value.replace("\0", "\ufffd")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
        return value
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


def read_event(row: InboxEvent) -> dict[str, Any]:
    """The stored payload of an inbox row as an event PostgreSQL can store (see UNSTORABLE);
    raises ValueError if it is not a JSON object."""
    payload = bytes(row.payload)
    event = loads(payload)
    if not isinstance(event, dict):
        raise ValueError("event is not a JSON object")
    if UNSTORABLE.search(payload):
        event = storable(event)
    return event


def _text(value: Any, limit: int) -> str:
    return "" if value is None else str(value)[:limit]


def _timestamp(value: Any, default: datetime) -> datetime:
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(float(value), tz=UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    return default


def _tags(value: Any) -> dict[str, str]:
    items: Iterable[tuple[Any, ...]]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = (tuple(p) for p in value if isinstance(p, list | tuple) and len(p) == 2)
    else:
        return {}
    return {_text(k, 200): _text(v, 200) for k, v in items}


def _frames(exception: dict[str, Any] | None) -> list[dict[str, Any]]:
    keep = (
        "filename", "abs_path", "module", "function", "lineno", "colno", "context_line",
        "pre_context", "post_context", "in_app", "vars",
    )  # fmt: skip
    return [{k: f[k] for k in keep if k in f} for f in grouping.frames_of(exception)][-MAX_FRAMES:]


def prepare(
    row: InboxEvent, event: dict[str, Any], scrubber: Scrubber, rules: SeverityRules
) -> Prepared:
    # Scrub only what is stored (modules, sdk, extra, debug_meta are dropped unread).
    event = scrubber.scrub({k: event[k] for k in STORED_KEYS if k in event})
    exception = grouping.primary_exception(event)
    frames = _frames(exception)
    in_app = [f for f in frames if f.get("in_app")] or frames
    top = in_app[-1] if in_app else {}
    level = _text(event.get("level") or ("error" if exception else "info"), 10).lower()
    exc_type = grouping.exception_type(exception)
    title, culprit = grouping.title_and_culprit(event)
    crumbs = event.get("breadcrumbs")
    if isinstance(crumbs, dict):
        crumbs = crumbs.get("values")
    lineno = top.get("lineno")
    report = ErrorReport(
        project_id=row.project_id,
        event_id=row.event_id,
        exception_type=exc_type[:255],
        message=grouping.message_of(event, exception)[:10_000],
        filename=_text(top.get("abs_path") or top.get("filename"), 500),
        lineno=lineno if isinstance(lineno, int) and 0 <= lineno < 2**31 else None,
        frames=frames,
        request=event.get("request") if isinstance(event.get("request"), dict) else {},
        tags=_tags(event.get("tags")),
        breadcrumbs=crumbs[-MAX_BREADCRUMBS:] if isinstance(crumbs, list) else [],
        contexts=event.get("contexts") if isinstance(event.get("contexts"), dict) else {},
        user=event.get("user") if isinstance(event.get("user"), dict) else {},
        release=_text(event.get("release"), 200),
        environment=_text(event.get("environment"), 100),
        platform=_text(event.get("platform"), 50),
        level=level,
        severity=rules.classify(exc_type, level),
        reported_at=_timestamp(event.get("timestamp"), row.received_at),
        received_at=row.received_at,
    )
    return Prepared(row, grouping.fingerprint(event), title, culprit, report)
