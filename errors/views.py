"""Sentry-compatible ingest endpoints. Thin on purpose: authenticate, cap, parse, enqueue.

Grouping and storage happen in the worker (errors/digest.py).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from errors import quotas, services
from errors.ingest import (
    BodyReader,
    Envelope,
    IngestError,
    Limits,
    envelope_header,
    key_from_dsn,
    open_body,
    parse_auth_header,
    parse_envelope,
    parse_store,
)
from errors.models import ProjectKey
from errors.ratelimit import Refusal

logger = logging.getLogger(__name__)
# SDKs stop sending performance data we would only drop (it is not in scope here).
DROPPED_CATEGORIES = "86400:transaction;span;profile;replay:organization:not_stored"
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": (
        "X-Sentry-Auth, Content-Type, Content-Encoding, sentry-trace, baggage"
    ),
    "Access-Control-Expose-Headers": "X-Sentry-Rate-Limits, Retry-After, X-Sentry-Error",
}


def _answer(status: int, body: dict[str, object], **headers: str) -> HttpResponse:
    response = JsonResponse(body, status=status)
    for name, value in {**CORS_HEADERS, **headers}.items():
        response[name] = value
    return response


def _error(exc: IngestError) -> HttpResponse:
    # HTTP headers are ASCII; anything else would be MIME-encoded into an unreadable line.
    header = exc.reason.encode("ascii", "backslashreplace").decode()
    return _answer(exc.status, {"detail": exc.reason}, **{"X-Sentry-Error": header})


def _key_from_request(request: HttpRequest) -> str | None:
    return request.GET.get("sentry_key") or _key_from_headers(request.META)


def _key_from_headers(meta: Mapping[str, Any]) -> str | None:
    for header in ("HTTP_X_SENTRY_AUTH", "HTTP_AUTHORIZATION"):
        value = meta.get(header, "")
        if value:
            found = parse_auth_header(value).get("sentry_key")
            if found:
                return found
    return None


def _key_from_environ(environ: Mapping[str, Any]) -> str | None:
    """As _key_from_request, from the raw WSGI environ (the last `sentry_key` in the query
    string, as request.GET.get answers, then the headers)."""
    query = environ.get("QUERY_STRING", "")
    if query:
        keys = [v for k, v in parse_qsl(query, keep_blank_values=True) if k == "sentry_key"]
        if keys and keys[-1]:
            return keys[-1]
    return _key_from_headers(environ)


def _read_body(request: HttpRequest, limits: Limits) -> bytes:
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.isdigit() and int(declared) > limits.max_compressed:
        raise IngestError(413, f"body exceeds {limits.max_compressed} bytes")
    if not declared and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        # Django reads nothing without a Content-Length; the server (gunicorn) has already
        # de-chunked wsgi.input, so read it directly, still capped.
        stream = request.META.get("wsgi.input")
        body = stream.read(limits.max_compressed + 1) if stream is not None else b""
    else:
        body = request.read(limits.max_compressed + 1)
    if len(body) > limits.max_compressed:
        raise IngestError(413, f"body exceeds {limits.max_compressed} bytes")
    return body


_KEYS: dict[tuple[int, str], tuple[float, ProjectKey | None]] = {}
KEY_CACHE_SECONDS = 10.0
_KEY_SHAPE = re.compile(r"[0-9A-Za-z]{1,64}")


def _lookup_key(project_id: int, key: str) -> ProjectKey | None:
    """The active key, cached per process for KEY_CACHE_SECONDS: one query fewer per event.
    A revoked key is refused within that many seconds."""
    now = time.monotonic()
    cached = _KEYS.get((project_id, key))
    if cached is not None and now - cached[0] < KEY_CACHE_SECONDS:
        return cached[1]
    found = (
        ProjectKey.objects.select_related("project")
        .filter(public_key=key, project_id=project_id, revoked_at__isnull=True)
        .first()
    )
    if len(_KEYS) > 10_000:  # many bogus keys: forget them all rather than grow
        _KEYS.clear()
    _KEYS[(project_id, key)] = (now, found)
    return found


def _plausible(project_id: int, key: str) -> bool:
    """Whether `key` could be one of our keys (no NUL bytes, no bigints for the database)."""
    return bool(_KEY_SHAPE.fullmatch(key)) and 0 < project_id < 2**63


def _unknown(project_id: int, key: str) -> IngestError:
    # One answer for "no such project" and "wrong key", with the DSN as we understood it.
    return IngestError(403, f"unknown project or key (DSN seen as <key {key[:8]!r}…>/{project_id})")


def _authenticate(project_id: int, key: str | None) -> ProjectKey:
    if not key:
        raise IngestError(403, "no sentry_key: send X-Sentry-Auth, ?sentry_key= or a dsn header")
    found = _lookup_key(project_id, key) if _plausible(project_id, key) else None
    if found is None:
        raise _unknown(project_id, key)
    return found


def refuse_early(environ: Mapping[str, Any], project_id: int) -> HttpResponse | None:
    """The answer to an SDK post this process can refuse from its raw WSGI environ alone, or
    None when the request must go the whole way. Refused here, without a query and before
    the body is read: a key that cannot be one of ours, a key the key cache knows is unknown,
    and a project whose quota refusal is still in force (quotas.blocked). A client that
    ignores 403s and Retry-After then costs a dictionary lookup, not a Django request; the
    key cache's KEY_CACHE_SECONDS still bounds how long a revoked or new key is misjudged."""
    if environ.get("REQUEST_METHOD") != "POST":
        return None
    key = _key_from_environ(environ)
    if not key:
        return None  # an envelope may name its DSN in its first line
    if not _plausible(project_id, key):
        return _error(_unknown(project_id, key))
    cached = _KEYS.get((project_id, key))
    if cached is None or time.monotonic() - cached[0] >= KEY_CACHE_SECONDS:
        return None
    if cached[1] is None:
        return _error(_unknown(project_id, key))
    refusal = quotas.blocked(cached[1].project)
    return _refused(refusal) if refusal is not None else None


def _ingest(
    request: HttpRequest, project_id: int, parse: Callable[[BodyReader, Limits], Envelope]
) -> HttpResponse:
    if request.method == "OPTIONS":
        return _answer(200, {})
    if request.method != "POST":
        return _answer(405, {"detail": "use POST"}, Allow="POST, OPTIONS")
    limits = services.limits()
    try:
        key = _key_from_request(request)
        project_key = _authenticate(project_id, key) if key else None
        if project_key is not None and (refusal := quotas.blocked(project_key.project)):
            return _refused(refusal)  # before the body is read
        body = _read_body(request, limits)
        reader = open_body(body, request.META.get("HTTP_CONTENT_ENCODING", ""), limits)
        if project_key is None:
            # Only an envelope names its DSN, in its first line: decode that far (bounded),
            # authenticate, and only then decode and parse the rest.
            dsn = envelope_header(reader, limits).get("dsn") if parse is parse_envelope else None
            project_key = _authenticate(project_id, key_from_dsn(dsn))
            if refusal := quotas.blocked(project_key.project):
                return _refused(refusal)
        envelope = parse(reader, limits)
        project = project_key.project
        if envelope.event is not None and (refusal := quotas.admit(project, len(envelope.event))):
            return _refused(refusal)
        services.enqueue(project.pk, envelope)
    except IngestError as exc:
        return _error(exc)
    except DatabaseError as exc:
        # Not accepted, so the SDK keeps the loss in its client report; say when to retry.
        logger.warning("ingest could not store an event: %s", exc)
        return _answer(503, {"detail": "storage unavailable, retry later"}, **{"Retry-After": "30"})
    body_out: dict[str, object] = {"id": envelope.event_id} if envelope.event_id else {}
    return _answer(200, body_out, **{"X-Sentry-Rate-Limits": DROPPED_CATEGORIES})


def _refused(refusal: Refusal) -> HttpResponse:
    detail = quotas.refusal_detail(refusal)
    return _answer(429, {"detail": detail}, **quotas.refusal_headers(refusal))


@csrf_exempt
def envelope_view(request: HttpRequest, project_id: int) -> HttpResponse:
    return _ingest(request, project_id, parse_envelope)


@csrf_exempt
def store_view(request: HttpRequest, project_id: int) -> HttpResponse:
    return _ingest(request, project_id, parse_store)
