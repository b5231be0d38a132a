"""Routing: which channel is told which item of a notification, and links that work outside."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from .models import Alert, Channel


def wants(channel: Channel, item: dict[str, Any]) -> bool:
    """Severity floor, key prefixes, and whether the channel takes resolved notices."""
    if item["state"] == Alert.State.RESOLVED and not channel.send_resolved:
        return False
    return channel.accepts(item["key"], int(item["severity"]))


def absolute_url(path: str) -> str:
    """A link in a notification: console paths are made absolute on OPS_PUBLIC_URL."""
    if path.startswith(("http://", "https://")):
        return path
    return f"{settings.OPS_PUBLIC_URL}/{path.lstrip('/')}"
