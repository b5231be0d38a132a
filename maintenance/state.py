"""Maintenance mode state: one database row, read through a one-second in-process cache.

The API other apps rely on: `is_down()`, `current()`, `enable(...)`, `disable(...)`, and the
`maintenance_mode(...)` context manager (used by restores), which restores the previous state.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import DatabaseError
from django.utils import timezone

from maintenance.models import MaintenanceState
from opsconsole import audit

_TTL = 1.0
_lock = threading.Lock()
_cached: tuple[float, Snapshot] | None = None


@dataclass(frozen=True)
class Snapshot:
    is_down: bool = False
    message: str = ""
    retry_after: int = 60
    secret_hash: str = ""
    allowed_ips: list[str] = field(default_factory=list)
    since: datetime | None = None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _load() -> Snapshot:
    row = MaintenanceState.objects.filter(pk=1).first()
    if row is None:
        return Snapshot()
    return Snapshot(
        is_down=row.is_down,
        message=row.message,
        retry_after=row.retry_after,
        secret_hash=row.secret_hash,
        allowed_ips=list(row.allowed_ips or []),
        since=row.since,
    )


def current(*, fresh: bool = False) -> Snapshot:
    """The state as every process sees it, at most one second old unless `fresh`."""
    global _cached
    now = time.monotonic()
    cached = _cached
    if not fresh and cached is not None and now - cached[0] < _TTL:
        return cached[1]
    try:
        snapshot = _load()
    except (DatabaseError, RuntimeError):
        # Without a database we cannot know; serving beats a maintenance page nobody asked for.
        # (RuntimeError: a process where database access is blocked, e.g. a no-db test.)
        snapshot = cached[1] if cached else Snapshot()
    with _lock:
        _cached = (now, snapshot)
    return snapshot


def is_down() -> bool:
    return current().is_down


def invalidate() -> None:
    global _cached
    with _lock:
        _cached = None


def enable(
    *,
    message: str = "",
    retry_after: int = 60,
    secret: str | None = None,
    allowed_ips: list[str] | None = None,
    actor: Any = "system",
    window_id: int | None = None,
) -> Snapshot:
    """Turn maintenance mode on for every process and record who did it."""
    MaintenanceState.objects.update_or_create(
        pk=1,
        defaults={
            "is_down": True,
            "message": message,
            "retry_after": retry_after,
            "secret_hash": hash_secret(secret) if secret else "",
            "allowed_ips": allowed_ips or [],
            "since": timezone.now(),
            "changed_by": _actor_name(actor),
            "window_id": window_id,
        },
    )
    invalidate()
    audit.record(
        "maintenance.down",
        actor=actor,
        target="maintenance mode",
        details={
            "message": message,
            "retry_after": retry_after,
            "bypass_secret": bool(secret),  # never the secret itself
            "allowed_ips": allowed_ips or [],
            "window_id": window_id,
        },
    )
    return current(fresh=True)


def disable(*, actor: Any = "system") -> Snapshot:
    """Turn maintenance mode off for every process and record who did it."""
    MaintenanceState.objects.update_or_create(
        pk=1,
        defaults={
            "is_down": False,
            "since": None,
            "changed_by": _actor_name(actor),
            "window_id": None,
        },
    )
    invalidate()
    audit.record("maintenance.up", actor=actor, target="maintenance mode")
    return current(fresh=True)


def _actor_name(actor: Any) -> str:
    if getattr(actor, "pk", None) is not None:
        return str(actor.get_username())[:150]
    return (str(actor) if actor else "system")[:150]


@contextmanager
def maintenance_mode(*, message: str, actor: Any = "system") -> Iterator[None]:
    """Turn maintenance mode on for the block; leave it as it was before afterwards."""
    was_down = current(fresh=True).is_down
    if not was_down:
        enable(message=message, actor=actor)
    try:
        yield
    finally:
        if not was_down:
            disable(actor=actor)
