"""One long-lived Redis client per process and URL, for hot paths.

Django's RedisCache builds a new `redis.Redis` object for every cache call, and redis-py
builds its table of response callbacks in each constructor: measurable on a path that runs
on every request (the error-ingest rate limit). Clients here are built once per process id,
so a forked gunicorn or Celery child never reuses its parent's sockets.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from django.conf import settings

_clients: dict[tuple[int, str], Any] = {}
_lock = threading.Lock()


def redis_client(url: str | None = None) -> Any:
    import redis

    url = url or settings.REDIS_URL
    key = (os.getpid(), url)
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                timeout = float(getattr(settings, "REDIS_TIMEOUT", 1.0))
                client = redis.Redis.from_url(
                    url, socket_connect_timeout=timeout, socket_timeout=timeout
                )
                _clients[key] = client
    return client
