"""Where processes add up their counters: Redis when configured, else the database.

Every process adds its deltas to two scopes: the all-time totals (read by /metrics, so
counters never go backwards) and the minute they happened in (read by the collectors, then
left to expire). Without Redis the same scopes are rows of `CounterValue`, added to with one
`INSERT .. ON CONFLICT DO UPDATE SET value = value + excluded.value`: the embedded default
already shares one SQLite file between web, worker and beat, the upsert is atomic there and on
PostgreSQL, and unlike a file per process nothing piles up or needs locking or merging.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from django.conf import settings
from django.db import connection, transaction

from metrics.histogram import TO_EXPOSED
from opsconsole.redis import redis_client as redis_client  # re-exported for callers

MINUTE_TTL_SECONDS = 3 * 3600


class Store(Protocol):
    def add(self, minutes: Mapping[int, Mapping[str, float]]) -> None: ...
    def totals(self) -> dict[str, float]: ...
    def minute(self, minute: int) -> dict[str, float]: ...
    def seen_users(self, user_ids: Mapping[int, float]) -> None: ...
    def active_users(self, since: float) -> int: ...
    def push_slow(self, items: Iterable[dict[str, Any]]) -> None: ...
    def pop_slow(self, limit: int) -> list[dict[str, Any]]: ...
    def forget_minutes_before(self, minute: int) -> None: ...


_SLOT = re.compile(r"^(.*\t[rw]?b)(\d+)$")


def _merge(minutes: Mapping[int, Mapping[str, float]]) -> dict[str, float]:
    """The deltas for the all-time totals. Totals only feed /metrics, so histogram slots are
    folded into the exposed buckets here (fewer fields to read on every scrape)."""
    total: dict[str, float] = {}
    for fields in minutes.values():
        for name, value in fields.items():
            match = _SLOT.match(name)
            if match:
                name = f"{match.group(1)}{TO_EXPOSED[int(match.group(2))]}"
            total[name] = total.get(name, 0.0) + value
    return total


class RedisStore:
    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix

    @property
    def client(self) -> Any:
        return redis_client(self.url)

    def _key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    def add(self, minutes: Mapping[int, Mapping[str, float]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for name, value in _merge(minutes).items():
            pipe.hincrbyfloat(self._key("total"), name, value)
        for minute, fields in minutes.items():
            key = self._key(f"m:{minute}")
            for name, value in fields.items():
                pipe.hincrbyfloat(key, name, value)
            pipe.expire(key, MINUTE_TTL_SECONDS)
        pipe.execute()

    def _read(self, key: str) -> dict[str, float]:
        raw = self.client.hgetall(self._key(key))
        return {k.decode(): float(v) for k, v in raw.items()}

    def totals(self) -> dict[str, float]:
        return self._read("total")

    def minute(self, minute: int) -> dict[str, float]:
        return self._read(f"m:{minute}")

    def seen_users(self, user_ids: Mapping[int, float]) -> None:
        if user_ids:
            self.client.zadd(self._key("users"), {str(k): v for k, v in user_ids.items()})

    def active_users(self, since: float) -> int:
        key = self._key("users")
        pipe = self.client.pipeline(transaction=False)
        pipe.zremrangebyscore(key, "-inf", f"({since - 3600}")
        pipe.zcount(key, since, "+inf")
        return int(pipe.execute()[1])

    def push_slow(self, items: Iterable[dict[str, Any]]) -> None:
        payload = [json.dumps(item) for item in items]
        if payload:
            key = self._key("slow")
            pipe = self.client.pipeline(transaction=False)
            pipe.rpush(key, *payload)
            # Bounded: a flood of slow requests while no collector runs cannot fill Redis.
            pipe.ltrim(key, -10_000, -1)
            pipe.execute()

    def forget_minutes_before(self, minute: int) -> None:
        pass  # minute hashes expire by themselves (MINUTE_TTL_SECONDS)

    def pop_slow(self, limit: int) -> list[dict[str, Any]]:
        # LPOP with a count is atomic, so two collectors never store the same item twice.
        raw = self.client.lpop(self._key("slow"), limit) or []
        return [json.loads(item) for item in raw]


class DatabaseStore:
    def add(self, minutes: Mapping[int, Mapping[str, float]]) -> None:
        from metrics.models import CounterValue

        rows: list[tuple[int, str, float]] = [(0, k, v) for k, v in _merge(minutes).items()]
        for minute, fields in minutes.items():
            rows.extend((minute, k, v) for k, v in fields.items())
        if not rows:
            return
        table = connection.ops.quote_name(CounterValue._meta.db_table)
        sql = (
            f"INSERT INTO {table} (minute, field, value) VALUES (%s, %s, %s) "  # noqa: S608
            f"ON CONFLICT (minute, field) DO UPDATE SET value = {table}.value + excluded.value"
        )
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, rows)

    def _read(self, minute: int) -> dict[str, float]:
        from metrics.models import CounterValue

        return dict(CounterValue.objects.filter(minute=minute).values_list("field", "value"))

    def totals(self) -> dict[str, float]:
        return self._read(0)

    def minute(self, minute: int) -> dict[str, float]:
        return self._read(minute)

    def seen_users(self, user_ids: Mapping[int, float]) -> None:
        from metrics.models import SeenUser

        if user_ids:
            SeenUser.objects.bulk_create(
                [SeenUser(user_id=k, last_seen=v) for k, v in user_ids.items()],
                update_conflicts=True,
                unique_fields=["user_id"],
                update_fields=["last_seen"],
            )

    def active_users(self, since: float) -> int:
        from metrics.models import SeenUser

        return SeenUser.objects.filter(last_seen__gte=since).count()

    def push_slow(self, items: Iterable[dict[str, Any]]) -> None:
        from metrics.models import SlowQuery, SlowRequest

        requests, queries = [], []
        for item in items:
            data = dict(item)
            kind = data.pop("kind")
            data["created_at"] = _from_epoch(data.pop("at"))
            if kind == "request":
                requests.append(SlowRequest(**data))
            else:
                queries.append(SlowQuery(**data))
        SlowRequest.objects.bulk_create(requests)
        SlowQuery.objects.bulk_create(queries)

    def pop_slow(self, limit: int) -> list[dict[str, Any]]:
        return []  # stored directly by push_slow

    def forget_minutes_before(self, minute: int) -> None:
        """Minute rows already summarized (the totals, minute 0, stay)."""
        from metrics.models import CounterValue

        CounterValue.objects.filter(minute__gt=0, minute__lt=minute).delete()


def _from_epoch(value: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(value, tz=UTC)


def get_store() -> Store:
    url = settings.REDIS_URL
    if url:
        return RedisStore(url, settings.OPS_METRICS_KEY_PREFIX)
    return DatabaseStore()


def current_minute(now: float | None = None) -> int:
    now = time.time() if now is None else now
    return int(now // 60) * 60
