"""Who may pass while the site is down: the bypass secret and its signed cookie, allowed IPs."""

from __future__ import annotations

import hmac
import ipaddress
import re
from datetime import timedelta

from django.core import signing
from django.utils.crypto import salted_hmac

from maintenance.state import Snapshot, hash_secret

COOKIE_NAME = "ops_maintenance_bypass"
COOKIE_MAX_AGE = timedelta(hours=12)
_SALT = "maintenance.bypass"
# A secret becomes a URL path segment: keep it to characters that need no escaping.
SECRET_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
# First path segments the secret may not take, or visiting them would set the cookie.
RESERVED_SEGMENTS = frozenset({"admin", "health", "static", "media", "metrics", "api"})


def secret_problem(secret: str) -> str | None:
    """Why `secret` cannot be a bypass secret, or None when it can."""
    if not SECRET_PATTERN.match(secret):
        return "the secret must be 16 to 128 characters of letters, digits, '-' or '_'"
    if secret.lower() in RESERVED_SEGMENTS:
        return f"the secret {secret!r} is a reserved path"
    return None


def is_secret_path(path: str, state: Snapshot) -> bool:
    """Whether `path` is `/<secret>` for the secret given to `down`."""
    if not state.secret_hash:
        return False
    candidate = path.strip("/")
    if not candidate or "/" in candidate:
        return False
    return hmac.compare_digest(hash_secret(candidate), state.secret_hash)


def _binding(state: Snapshot) -> str:
    # Ties the cookie to this secret: a new `down --secret` invalidates cookies of the last one.
    return salted_hmac(_SALT, state.secret_hash).hexdigest()[:32]


def make_cookie_value(state: Snapshot) -> str:
    return signing.dumps({"b": _binding(state)}, salt=_SALT, compress=False)


def cookie_is_valid(value: str | None, state: Snapshot) -> bool:
    if not value or not state.secret_hash:
        return False
    try:
        payload = signing.loads(value, salt=_SALT, max_age=COOKIE_MAX_AGE)
    except signing.BadSignature:  # also covers an expired cookie (SignatureExpired)
        return False
    if not isinstance(payload, dict):
        return False
    return hmac.compare_digest(str(payload.get("b", "")), _binding(state))


def ip_allowed(ip: str | None, allowed: list[str]) -> bool:
    if not ip or not allowed:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for entry in allowed:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def normalise_allowed(entries: list[str]) -> list[str]:
    """Validate `--allow` values (addresses or CIDR networks); raise ValueError naming a bad one."""
    out = []
    for entry in entries:
        try:
            out.append(str(ipaddress.ip_network(entry.strip(), strict=False)))
        except ValueError:
            raise ValueError(
                f"{entry!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)"
            ) from None
    return out
