"""Webhook signatures: HMAC-SHA256 over "<timestamp>.<body>", sent in one header.

    X-OpsConsole-Signature: t=1764172800,v1=<hex digest>

To verify on the receiving side: take `t` and the raw request body bytes, compute
HMAC-SHA256(secret, f"{t}.".encode() + body), compare it with `v1` in constant time, and refuse
timestamps older than a few minutes (replays). `verify()` below does exactly that.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-OpsConsole-Signature"
TOLERANCE_SECONDS = 300


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """True when `header` is a valid, fresh signature of `body` with `secret`."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, given)
