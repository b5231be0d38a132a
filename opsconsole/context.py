"""Per-request context (request id, client IP) readable from logs, audit records and errors."""

from __future__ import annotations

from contextvars import ContextVar

_request_id: ContextVar[str | None] = ContextVar("ops_request_id", default=None)
_client_ip: ContextVar[str | None] = ContextVar("ops_client_ip", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


def current_client_ip() -> str | None:
    return _client_ip.get()


def set_request_context(request_id: str | None, client_ip: str | None) -> tuple[object, object]:
    return _request_id.set(request_id), _client_ip.set(client_ip)


def reset_request_context(tokens: tuple[object, object]) -> None:
    _request_id.reset(tokens[0])  # type: ignore[arg-type]
    _client_ip.reset(tokens[1])  # type: ignore[arg-type]
