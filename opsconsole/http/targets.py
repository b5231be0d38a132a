"""The one parser for every URL the console will send requests to.

Forms, models and the request wrapper all use it, so a URL is refused the same way wherever
it is entered: as a clear message, never as an exception from `urllib` deep inside a save.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import unicodedata
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2000
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class BlockedDestination(ValueError):
    """The URL points at an address that outbound requests may not reach."""


class InvalidURL(BlockedDestination):
    """The URL cannot be sent to at all: bad scheme, host or port."""


@dataclasses.dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # lower-case ASCII (IDNA) name or an IP address without brackets
    port: int


def _split_host_port(netloc: str) -> tuple[str, str]:
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):
        host, bracket, rest = hostport[1:].partition("]")
        if not bracket:
            raise InvalidURL("the IPv6 address has no closing bracket")
        if rest and not rest.startswith(":"):
            raise InvalidURL("unexpected characters after the IPv6 address")
        return f"[{host}]", rest[1:]
    host, colon, port = hostport.rpartition(":")
    return (host, port) if colon else (hostport, "")


def _host(raw: str) -> str:
    if raw.startswith("["):
        try:
            return str(ipaddress.IPv6Address(raw[1:-1]))
        except ValueError:
            raise InvalidURL(f"{raw} is not an IPv6 address") from None
    if not raw:
        raise InvalidURL("the URL has no host")
    try:
        return str(ipaddress.IPv4Address(raw))
    except ValueError:
        pass
    try:
        name = raw.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise InvalidURL(f"{raw!r} is not a valid host name") from None
    labels = name.removesuffix(".").split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise InvalidURL(f"{raw!r} is not a valid host name")
    return name


def parse_url(url: str) -> Target:
    """Scheme, host and port of an outbound URL, or InvalidURL with a one-line reason."""
    if not url or not url.strip():
        raise InvalidURL("the URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidURL(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or unicodedata.category(ch).startswith("C") for ch in url):
        raise InvalidURL("the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidURL(f"the URL cannot be parsed ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidURL(f"only http and https URLs are allowed, not {parts.scheme or 'none'!r}")
    raw_host, raw_port = _split_host_port(parts.netloc)
    host = _host(raw_host)
    if not raw_port:
        return Target(scheme, host, _DEFAULT_PORTS[scheme])
    if not (raw_port.isascii() and raw_port.isdigit()) or not 1 <= int(raw_port) <= 65535:
        shown = raw_port if len(raw_port) <= 20 else raw_port[:20] + "..."
        raise InvalidURL(f"the port must be a number from 1 to 65535, not {shown!r}")
    return Target(scheme, host, int(raw_port))
