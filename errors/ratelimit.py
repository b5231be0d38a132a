"""Per-project ingest rate limit: a fixed one-minute window counted where every web process
sees it. With Redis, one pipelined INCR + EXPIRE on a long-lived client (a single round trip
per event); without it (the embedded default), the Django cache, which is the shared
database there."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache

from opsconsole.redis import redis_client

WINDOW = 60
logger = logging.getLogger(__name__)


def _count_in_redis(key: str) -> int:
    pipe = redis_client(settings.REDIS_URL).pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, WINDOW * 2)
    used, _ = pipe.execute()
    return int(used)


def _count_in_cache(key: str) -> int:
    cache.add(key, 0, timeout=WINDOW * 2)
    try:
        return int(cache.incr(key))
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=WINDOW * 2)
        return 1


def check(project_id: int, limit: int) -> int:
    """Count one event; return 0 if allowed, else the seconds until the window reopens."""
    if not limit:
        return 0
    now = time.time()
    window = int(now // WINDOW)
    key = f"errors:rl:{project_id}:{window}"
    try:
        if settings.REDIS_URL:
            used = _count_in_redis(f"{settings.OPS_REDIS_KEY_PREFIX}:{key}")
        else:
            used = _count_in_cache(key)
    except Exception as exc:  # the counter being down must not cost accepted events
        logger.warning("ingest rate limit not checked, the counter store failed: %s", exc)
        return 0
    if used <= limit:
        return 0
    return max(1, int((window + 1) * WINDOW - now) + 1)
