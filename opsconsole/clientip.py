"""The client address of a request: the one function every user of it calls (request context,
and through it the audit trail, logs and the maintenance allow-list).

Behind proxies, X-Forwarded-For reads "client-sent..., hop, hop": each proxy appends the address
it received from. Only entries appended by our own proxies can be believed, so the client is the
rightmost hop that is not ours, found by counting OPS_PROXY_HOPS from the right or by skipping
OPS_TRUSTED_PROXIES. Anything we cannot read falls back to the peer address (REMOTE_ADDR).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from django.conf import settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_ip(request: Any) -> str | None:
    """The client address for `request` (anything with a WSGI-style META mapping)."""
    meta = request.META
    peer = parse_address(str(meta.get("REMOTE_ADDR") or ""))
    fallback = str(peer) if peer else None
    if not getattr(settings, "OPS_BEHIND_PROXY", False) or peer is None:
        return fallback
    hops = [h.strip() for h in str(meta.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
    if hops == [""]:
        return fallback
    trusted = [ipaddress.ip_network(n) for n in getattr(settings, "OPS_TRUSTED_PROXIES", [])]
    if trusted:
        chosen = _by_trusted_networks(peer, hops, trusted)
    else:
        chosen = _by_hop_count(hops, int(getattr(settings, "OPS_PROXY_HOPS", 1)))
    return str(chosen) if chosen else fallback


def _by_hop_count(hops: list[str], count: int) -> Address | None:
    # With N proxies in front, the Nth entry from the right was written by the outermost one.
    if count < 1 or len(hops) < count:
        return None
    return parse_address(hops[-count])


def _by_trusted_networks(
    peer: Address, hops: list[str], trusted: Sequence[Network]
) -> Address | None:
    # A peer that is not one of our proxies wrote the whole header itself: believe none of it.
    if not _in(peer, trusted):
        return None
    address = None
    for entry in reversed(hops):
        address = parse_address(entry)
        if address is None:
            return None
        if not _in(address, trusted):
            return address
    # Every hop is one of ours (an internal caller): the leftmost is the origin.
    return address


def _in(address: Address, networks: Sequence[Network]) -> bool:
    return any(address in network for network in networks)


def parse_address(text: str) -> Address | None:
    """An IP address as proxies write it: bare, "[v6]", or with a ":port" some proxies add."""
    value = text.strip()
    if value.startswith("["):
        value = value[1 : value.find("]")] if "]" in value else ""
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    # An IPv4-mapped IPv6 peer (dual-stack sockets) is the IPv4 client it carries.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address
