"""Fixtures and tiny factories for the errors app's tests (imported by tests/test_errors_*.py)."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sentry_sdk
from django.test import Client

from errors import services
from errors.models import ErrorProject, ProjectKey


def make_event(**fields: Any) -> dict[str, Any]:
    """A sentry-sdk-shaped error event."""
    event: dict[str, Any] = {
        "event_id": uuid.uuid4().hex,
        "timestamp": "2026-11-26T10:00:00.000000Z",
        "platform": "python",
        "level": "error",
        "release": "billing@1.2.3",
        "environment": "production",
        "exception": {
            "values": [
                {
                    "type": "ValueError",
                    "value": "invoice 1234 is not payable",
                    "module": None,
                    "mechanism": {"type": "generic", "handled": True},
                    "stacktrace": {
                        "frames": [
                            {
                                "filename": "billing/views.py",
                                "abs_path": "/srv/billing/views.py",
                                "module": "billing.views",
                                "function": "pay",
                                "lineno": 42,
                                "context_line": "    raise ValueError(msg)",
                                "pre_context": ["def pay(invoice):", "    msg = build()"],
                                "post_context": [""],
                                "in_app": True,
                                "vars": {"invoice": "1234"},
                            }
                        ]
                    },
                }
            ]
        },
        "tags": {"team": "payments"},
    }
    event.update(fields)
    return event


def envelope_bytes(
    event: dict[str, Any] | None = None,
    *,
    extra_items: list[tuple[dict[str, Any], bytes]] | None = None,
) -> bytes:
    parts: list[bytes] = []
    header: dict[str, Any] = {"sent_at": "2026-11-26T10:00:01Z"}
    if event is not None:
        header["event_id"] = event["event_id"]
    parts.append(json.dumps(header).encode())
    if event is not None:
        payload = json.dumps(event).encode()
        parts.append(json.dumps({"type": "event", "length": len(payload)}).encode())
        parts.append(payload)
    for item_header, payload in extra_items or []:
        parts.append(json.dumps(item_header).encode())
        parts.append(payload)
    return b"\n".join(parts) + b"\n"


def auth_header(key: ProjectKey | str) -> str:
    public = key if isinstance(key, str) else key.public_key
    return f"Sentry sentry_key={public}, sentry_version=7, sentry_client=tests/1.0"


def post_envelope(
    client: Client,
    project_id: int,
    body: bytes,
    *,
    key: ProjectKey | str | None = None,
    encoding: str = "",
    endpoint: str = "envelope",
    query: str = "",
) -> Any:
    headers: dict[str, Any] = {}
    if key is not None:
        headers["HTTP_X_SENTRY_AUTH"] = auth_header(key)
    if encoding:
        headers["HTTP_CONTENT_ENCODING"] = encoding
    return client.post(
        f"/api/{project_id}/{endpoint}/{query}",
        data=body,
        content_type="application/x-sentry-envelope",
        **headers,
    )


def gz(data: bytes) -> bytes:
    return gzip.compress(data)


@pytest.fixture(name="project")
def project_fixture(db: Any) -> tuple[ErrorProject, ProjectKey]:
    from errors import quotas

    quotas.forget_refusals()  # a refusal remembered from an earlier test's project
    return services.create_project("billing")


@pytest.fixture(name="sdk")
def sdk_fixture() -> Iterator[Callable[..., Any]]:
    """`sdk(dsn, **options)` initialises the real sentry-sdk client; closed after the test."""

    def start(dsn: str, **options: Any) -> Any:
        options.setdefault("default_integrations", False)
        options.setdefault("auto_session_tracking", False)
        sentry_sdk.init(dsn=dsn, **options)
        return sentry_sdk.get_client()

    yield start
    sentry_sdk.get_client().close(timeout=2)
    sentry_sdk.init()


def dsn_for(live_server: Any, key: ProjectKey) -> str:
    host = live_server.url.split("://", 1)[1]
    return f"http://{key.public_key}@{host}/{key.project_id}"
