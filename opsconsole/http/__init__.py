"""All outbound HTTP goes through here: one call, one deadline, a byte cap and an SSRF guard.

`request()` parses the URL with the one parser every form uses, resolves the host once,
refuses it when any address is private, loopback, link-local, reserved, cloud metadata or an
IPv6 form of one of those (unless `allow_private=True` or the network is in
OPS_HTTP_ALLOW_NETWORKS), connects to the address it vetted, and reads at most `max_bytes` of
the answer before `timeout` seconds have passed since the call, whatever the server does.
Response bodies reach people only through `excerpt()`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import ssl
import threading
import time
import unicodedata
from collections.abc import Mapping

import httpcore
import httpx
from django.conf import settings

from opsconsole import __version__

from .addresses import Network, embedded_ipv4, refusal
from .forms import OutboundURLField, OutboundURLFormMixin
from .network import GuardedBackend, resolve, vet
from .targets import BlockedDestination, InvalidURL, Target, parse_url

__all__ = [
    "BlockedDestination",
    "InvalidURL",
    "OutboundURLField",
    "OutboundURLFormMixin",
    "Reply",
    "Target",
    "check_destination",
    "embedded_ipv4",
    "excerpt",
    "parse_url",
    "refusal",
    "request",
]

USER_AGENT = "OpsConsole/{version}"
DEFAULT_MAX_BYTES = 64 * 1024
EXCERPT_CHARS = 200


def allowed_networks() -> list[Network]:
    raw = getattr(settings, "OPS_HTTP_ALLOW_NETWORKS", [])
    return [ipaddress.ip_network(item, strict=False) for item in raw]


def check_destination(url: str, *, allow_private: bool = False, timeout: float = 5.0) -> None:
    """Raise BlockedDestination (InvalidURL for a malformed URL) unless the URL may be sent to.

    For forms: it tells the operator early. `request()` checks again at connect time, on the
    addresses it actually connects to.
    """
    target = parse_url(url)
    if allow_private:
        return
    try:
        addresses = resolve(target.host, target.port, time.monotonic() + timeout)
    except httpcore.TimeoutException:
        raise BlockedDestination(f"resolving {target.host} timed out") from None
    except httpcore.ConnectError as exc:
        raise BlockedDestination(str(exc)) from None
    vet(target.host, addresses, allowed_networks())


@dataclasses.dataclass(frozen=True)
class Reply:
    """What came back: the status, headers and at most `max_bytes` of the body."""

    status_code: int
    headers: httpx.Headers
    body: bytes
    truncated: bool  # the server had more than max_bytes to send
    peer_address: str  # the IP address the socket was connected to
    peer_certificate: bytes | None  # DER, for https

    def excerpt(self) -> str:
        """A short, inert excerpt of the body, safe to show in the console."""
        if self.headers.get("content-encoding", "identity").lower() != "identity":
            return "(compressed body)"
        return excerpt(self.body)


_contexts: dict[bool, ssl.SSLContext] = {}
_contexts_lock = threading.Lock()


def _ssl_context(verify: bool | ssl.SSLContext) -> ssl.SSLContext:
    """Loading the CA bundle takes tens of ms: build each kind once (contexts are thread-safe)."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    with _contexts_lock:
        if verify not in _contexts:
            _contexts[verify] = httpx.create_ssl_context(verify=verify, trust_env=False)
        return _contexts[verify]


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, backend: GuardedBackend, context: ssl.SSLContext) -> None:
        super().__init__(verify=context, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=context, network_backend=backend, max_connections=1, retries=0
        )


def request(
    method: str,
    url: str,
    *,
    timeout: float,
    allow_private: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    verify: bool | ssl.SSLContext = True,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
) -> Reply:
    """One request that is over, one way or another, `timeout` seconds after the call.

    Raises BlockedDestination (InvalidURL for a malformed URL) before anything is sent to a
    refused address, httpx.TimeoutException at the deadline and httpx.HTTPError for the rest.
    `max_bytes=0` reads no body at all (a probe that wants the status only).
    """
    if not timeout or timeout <= 0:
        raise ValueError("a positive timeout is mandatory for outbound HTTP")
    deadline = time.monotonic() + timeout
    _check_url(url)
    backend = GuardedBackend(
        deadline=deadline, allow_private=allow_private, allowed=allowed_networks()
    )
    with (
        httpx.Client(
            transport=_GuardedTransport(backend, _ssl_context(verify)),
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: it would resolve the name itself
        ) as client,
        client.stream(method, url, headers=_headers(headers), content=content) as response,
    ):
        return _read_reply(response, max_bytes)


def _check_url(url: str) -> None:
    """Our parser's refusals first, then anything httpx itself cannot parse."""
    parse_url(url)
    try:
        httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise InvalidURL(str(exc)) from None


def _headers(extra: Mapping[str, str] | None) -> dict[str, str]:
    sent = {
        "User-Agent": USER_AGENT.format(version=__version__),
        # Count the bytes that cross the wire: a compressed body could inflate past the cap.
        "Accept-Encoding": "identity",
    }
    sent.update(extra or {})
    return sent


def _read_reply(response: httpx.Response, max_bytes: int) -> Reply:
    """At most `max_bytes` of the raw body; the caller's leaving the stream closes the
    connection mid-body when there was more."""
    stream = response.extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    tls = stream.get_extra_info("ssl_object") if stream is not None else None
    body = bytearray()
    truncated = False
    if max_bytes > 0:
        for chunk in response.iter_raw():
            room = max_bytes - len(body)
            body += chunk[:room]
            if len(chunk) > room:
                truncated = True
                break
    return Reply(
        status_code=response.status_code,
        headers=response.headers,
        body=bytes(body),
        truncated=truncated,
        peer_address=str(peer[0]) if peer else "",
        peer_certificate=tls.getpeercert(True) if tls is not None else None,
    )


_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_TAG = re.compile(r"<[^<>]{0,2000}>")
# Script and style bodies are code, not words: drop them with their tags (unclosed: to the end).
_CODE = re.compile(r"<(script|style)\b.*?(</\1\s*>|$)", re.IGNORECASE | re.DOTALL)


def excerpt(raw: bytes | str, limit: int = EXCERPT_CHARS) -> str:
    """At most `limit` characters of a response body or remote message, made inert: no tags,
    no control or format characters (ANSI colours, bidi overrides), whitespace collapsed."""
    text = raw[: limit * 20]
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = _TAG.sub(" ", _CODE.sub(" ", _ANSI.sub("", text)))
    text = "".join(
        " " if unicodedata.category(ch).startswith("C") or ch in "<>" else ch for ch in text
    )
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
