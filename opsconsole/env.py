"""Typed environment helpers that raise on bad values instead of guessing."""

from __future__ import annotations

import ipaddress
import os
from datetime import timedelta
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """A configuration value is present but cannot be used."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(
        f"{name}={raw!r} is not a boolean: use one of 1/0, true/false, yes/no, on/off"
    )


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}={value} is below the minimum of {minimum}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}={value} is below the minimum of {minimum}")
    return value


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_networks(name: str) -> list[str]:
    """A comma-separated list of IP networks (a bare address is a /32 or /128), normalised."""
    networks = []
    for item in env_list(name):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigError(
                f"{name}: {item!r} is not an IP address or network (e.g. 10.0.0.0/8)"
            ) from None
    return networks


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """Parse '90s', '15m', '26h', '7d', '2w' or a bare number of seconds."""
    value = text.strip().lower()
    if not value:
        raise ConfigError("empty duration")
    unit = value[-1]
    number = value[:-1] if unit in _UNITS else value
    factor = _UNITS.get(unit, 1)
    try:
        amount = float(number)
    except ValueError:
        raise ConfigError(f"{text!r} is not a duration: use e.g. 30s, 15m, 26h, 7d") from None
    if amount < 0:
        raise ConfigError(f"{text!r} is negative")
    return timedelta(seconds=amount * factor)


def env_duration(name: str, default: str) -> timedelta:
    raw = os.environ.get(name)
    try:
        return parse_duration(raw if raw not in (None, "") else default)
    except ConfigError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def url_scheme(url: str) -> str:
    return urlsplit(url).scheme.lower()
