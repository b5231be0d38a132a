"""Per-project ingest rate limit: a fixed one-minute window counted in the cache (Redis in
production, so all web processes share it)."""

from __future__ import annotations

import logging
import time

from django.core.cache import cache

WINDOW = 60
logger = logging.getLogger(__name__)


def check(project_id: int, limit: int) -> int:
    """Count one event; return 0 if allowed, else the seconds until the window reopens."""
    if not limit:
        return 0
    now = time.time()
    window = int(now // WINDOW)
    key = f"errors:rl:{project_id}:{window}"
    try:
        cache.add(key, 0, timeout=WINDOW * 2)
        try:
            used = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=WINDOW * 2)
            used = 1
    except Exception as exc:  # the cache being down must not cost accepted events
        logger.warning("ingest rate limit not checked, the cache failed: %s", exc)
        return 0
    if used <= limit:
        return 0
    return max(1, int((window + 1) * WINDOW - now) + 1)
