"""Which addresses outbound HTTP may reach.

Python's `is_global` tables differ between releases and do not look inside IPv6 addresses that
carry an IPv4 address (`::ffff:127.0.0.1` is private on 3.11, `64:ff9b::127.0.0.1` and
`2002:7f00:1::` are "global"), so every translation scheme is unpacked here and the IPv4 address
it leads to is judged as well.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# RFC 8215 local-use NAT64: the operator picks the prefix length, so where the IPv4 address
# sits is unknowable here; the block is site-local by definition and is refused whole.
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_TEREDO = ipaddress.ip_network("2001::/32")


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 address(es) an IPv6 address leads to: mapped, compatible, NAT64, 6to4, Teredo."""
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _MAPPED:
        return [low32]
    if address in _COMPATIBLE:
        # :: and ::1 are the unspecified and loopback addresses, not IPv4-compatible ones.
        return [low32] if int(address) > 1 else []
    if address in _NAT64:
        return [low32]
    if address in _SIX_TO_FOUR:
        return [ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF)]
    if address in _TEREDO:
        server = ipaddress.IPv4Address((int(address) >> 64) & 0xFFFFFFFF)
        # The client's address is stored with every bit flipped (RFC 4380 section 4).
        client = ipaddress.IPv4Address(~int(address) & 0xFFFFFFFF)
        return [server, client]
    return []


def _public(address: Address) -> bool:
    return address.is_global and not address.is_multicast


def refusal(address: Address, allowed: Sequence[Network] = ()) -> str:
    """Why outbound HTTP may not reach `address` ("" when it may)."""
    inner = embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else []
    if any(address in net for net in allowed) or (
        inner and all(any(v4 in net for net in allowed) for v4 in inner)
    ):
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address in _NAT64_LOCAL:
        return f"{address}, a local-use NAT64 address"
    for v4 in inner:
        if not _public(v4):
            return f"{address}, which leads to {v4}, a private or reserved address"
    if not _public(address):
        return f"{address}, a private or reserved address"
    return ""
