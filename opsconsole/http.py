"""All outbound HTTP goes through here: mandatory timeouts and an SSRF guard.

`request()` refuses targets that resolve to private, loopback, link-local, reserved or
cloud-metadata addresses unless the caller passes `allow_private=True` or the address is in
OPS_HTTP_ALLOW_NETWORKS (comma-separated CIDRs, e.g. "127.0.0.0/8" for tests).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings

USER_AGENT = "OpsConsole/{version}"


class BlockedDestination(ValueError):
    """The URL points at an address that outbound requests may not reach."""


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    raw = getattr(settings, "OPS_HTTP_ALLOW_NETWORKS", [])
    return [ipaddress.ip_network(item, strict=False) for item in raw]


def check_destination(url: str, *, allow_private: bool = False) -> None:
    """Raise BlockedDestination unless every address the URL's host resolves to is public."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"}:
        raise BlockedDestination(f"only http and https URLs are allowed, not {parts.scheme!r}")
    host = parts.hostname
    if not host:
        raise BlockedDestination("the URL has no host")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise BlockedDestination(f"cannot resolve {host}: {exc.strerror}") from None
    allowed = _allowed_networks()
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if any(address in net for net in allowed):
            continue
        if not address.is_global or address.is_multicast:
            raise BlockedDestination(
                f"{host} resolves to {address}, a private or reserved address; "
                "allow it explicitly (OPS_HTTP_ALLOW_NETWORKS) if this is intended"
            )


def client(*, timeout: float, **kwargs: Any) -> httpx.Client:
    """An httpx client with a mandatory total timeout (seconds)."""
    if not timeout or timeout <= 0:
        raise ValueError("a positive timeout is mandatory for outbound HTTP")
    headers = {"User-Agent": USER_AGENT.format(version=settings.VERSION)}
    headers.update(kwargs.pop("headers", {}) or {})
    return httpx.Client(timeout=httpx.Timeout(timeout), headers=headers, **kwargs)


def request(
    method: str,
    url: str,
    *,
    timeout: float,
    allow_private: bool = False,
    **kwargs: Any,
) -> httpx.Response:
    """One request with a mandatory timeout, after the SSRF guard."""
    check_destination(url, allow_private=allow_private)
    verify = kwargs.pop("verify", True)
    with client(timeout=timeout, verify=verify, follow_redirects=False) as http:
        return http.request(method, url, **kwargs)
