"""Fixed-window usage counters for the ingest quotas, counted where every web process sees them.

`consume()` takes several quotas at once (events per minute, bytes per minute, bytes per day)
and is all-or-nothing and atomic: either every counter grows by its amount and none passes its
limit, or nothing changes. So concurrent requests never accept more than a limit, and a
refused event uses up no quota.

- With Redis: one Lua script (a single round trip, atomic on the server).
- Without it (the embedded default): one `INSERT ... ON CONFLICT DO UPDATE ... WHERE ...
  RETURNING` per counter on a `QuotaCounter` row, in one transaction. Django's database cache
  is not used: its `incr` is a read then a write, which loses counts under concurrency.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection, transaction

from errors.models import QuotaCounter
from opsconsole.redis import redis_client

logger = logging.getLogger(__name__)
MINUTE = 60
DAY = 86_400

# KEYS: counters. ARGV: amount, limit, ttl for each key in turn. Returns 0 when every counter
# was incremented, else the 1-based index of the first counter that would pass its limit.
_LUA = """
for i = 1, #KEYS do
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  if used + tonumber(ARGV[3 * i - 2]) > tonumber(ARGV[3 * i - 1]) then return i end
end
for i = 1, #KEYS do
  redis.call('INCRBY', KEYS[i], ARGV[3 * i - 2])
  redis.call('EXPIRE', KEYS[i], ARGV[3 * i])
end
return 0
"""
_scripts: dict[int, object] = {}


@dataclass(frozen=True)
class Quota:
    """`amount` more of something counted over a `window`-second fixed window, up to `limit`."""

    name: str
    amount: int
    limit: int
    window: int


@dataclass(frozen=True)
class Refusal:
    quota: Quota
    retry_after: int


def _window_start(now: float, window: int) -> int:
    return int(now // window) * window


def _key(project_id: int, quota: Quota, now: float) -> str:
    # The braces keep one project's counters in one Redis Cluster slot (the script needs it).
    return f"errors:q:{{{project_id}}}:{quota.name}:{_window_start(now, quota.window)}"


def _consume_in_redis(keys: list[str], quotas: list[Quota]) -> int:
    client = redis_client(settings.REDIS_URL)
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_LUA)
    args: list[int] = []
    for q in quotas:
        args += [q.amount, q.limit, q.window * 2]
    prefix = settings.OPS_REDIS_KEY_PREFIX
    return int(script(keys=[f"{prefix}:{k}" for k in keys], args=args))  # type: ignore[operator]


class _Over(Exception):
    def __init__(self, index: int) -> None:
        self.index = index


def _consume_in_db(keys: list[str], quotas: list[Quota], now: float) -> int:
    quote = connection.ops.quote_name
    table, key_col, value_col = quote(QuotaCounter._meta.db_table), quote("key"), quote("value")
    # One statement per counter: insert it, or add to it only while it stays within the limit
    # (the row lock makes concurrent statements wait, then re-check the condition).
    sql = (
        f"INSERT INTO {table} ({key_col}, {value_col}, expires_at) "  # noqa: S608 - our names
        f"VALUES (%s, %s, %s) ON CONFLICT ({key_col}) DO UPDATE "
        f"SET {value_col} = {table}.{value_col} + excluded.{value_col} "
        f"WHERE {table}.{value_col} + excluded.{value_col} <= %s RETURNING {value_col}"
    )
    expires_field = QuotaCounter._meta.get_field("expires_at")
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            for index, (key, quota) in enumerate(zip(keys, quotas, strict=True), start=1):
                expires = datetime.fromtimestamp(
                    _window_start(now, quota.window) + quota.window, tz=UTC
                )
                stored = expires_field.get_db_prep_value(expires, connection)
                cursor.execute(sql, [key, quota.amount, stored, quota.limit])
                if cursor.fetchone() is None:
                    raise _Over(index)  # rolls back the counters already incremented
    except _Over as over:
        return over.index
    return 0


def consume(project_id: int, quotas: list[Quota], *, now: float | None = None) -> Refusal | None:
    """Count `quotas` for a project; None if all fit, else the first one that does not."""
    quotas = [q for q in quotas if q.limit]  # a limit of 0 means unlimited
    if not quotas:
        return None
    now = time.time() if now is None else now
    refused: Quota | None = next((q for q in quotas if q.amount > q.limit), None)
    if refused is None:
        keys = [_key(project_id, q, now) for q in quotas]
        try:
            if settings.REDIS_URL:
                index = _consume_in_redis(keys, quotas)
            else:
                index = _consume_in_db(keys, quotas, now)
        except Exception as exc:  # the counter being down must not cost accepted events
            logger.warning("ingest quotas not checked, the counter store failed: %s", exc)
            return None
        if not index:
            return None
        refused = quotas[index - 1]
    reopens = _window_start(now, refused.window) + refused.window
    return Refusal(refused, max(1, int(reopens - now) + 1))


def check(project_id: int, limit: int) -> int:
    """Count one event against an events-per-minute limit; 0 if allowed, else the seconds
    until the window reopens."""
    refusal = consume(project_id, [Quota("events_per_minute", 1, limit, MINUTE)])
    return refusal.retry_after if refusal else 0


def forget_expired(*, now: datetime | None = None) -> int:
    """Delete database counters whose window has passed (Redis expires its own)."""
    from django.utils import timezone

    deleted, _ = QuotaCounter.objects.filter(expires_at__lt=now or timezone.now()).delete()
    return deleted
