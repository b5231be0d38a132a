"""Purging the cache: expired entries go, live ones stay; nothing is ever flushed."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from maintenance import steps

DB_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "ops_cache_test",
        "KEY_PREFIX": "ops",
    }
}


@pytest.mark.django_db
def test_expired_database_cache_entries_go_and_live_ones_stay() -> None:
    with override_settings(CACHES=DB_CACHE):
        call_command("createcachetable", verbosity=0)
        cache = caches["default"]
        with time_machine.travel(timezone.now(), tick=False) as traveller:
            for i in range(30):
                cache.set(f"short-{i}", i, timeout=60)
            cache.set("long", "stays", timeout=3600)
            cache.set("forever", "stays", timeout=None)
            traveller.shift(timedelta(minutes=5))
            counts = steps.purge_expired_cache(timezone.now())
            assert counts["default"] == {"expired_rows_deleted": 30}
            with connection.cursor() as cursor:
                cursor.execute("SELECT COUNT(*) FROM ops_cache_test")
                assert cursor.fetchone()[0] == 2
            assert cache.get("long") == "stays"
            assert cache.get("forever") == "stays"


def test_a_file_cache_loses_only_expired_files(tmp_path: Path) -> None:
    settings = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path),
        }
    }
    with override_settings(CACHES=settings):
        cache = caches["default"]
        with time_machine.travel(timezone.now(), tick=False) as traveller:
            cache.set("short", 1, timeout=10)
            cache.set("long", 2, timeout=3600)
            traveller.shift(timedelta(minutes=1))
            counts = steps.purge_expired_cache(timezone.now())
            assert counts["default"] == {"expired_files_deleted": 1}
            assert cache.get("long") == 2


@pytest.mark.redis
def test_expired_redis_keys_go_and_live_ones_stay(redis_url: str) -> None:
    import redis

    prefix = f"ops-maint-{uuid.uuid4().hex[:8]}"
    settings = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": prefix,
        }
    }
    raw = redis.Redis.from_url(redis_url)
    try:
        with override_settings(CACHES=settings):
            cache = caches["default"]
            for i in range(20):
                cache.set(f"short-{i}", i, timeout=1)
            cache.set("live", "stays", timeout=3600)
            cache.set("forever", "stays", timeout=None)
            unrelated = f"{prefix}-not-ours"
            raw.set(unrelated, "x")
            time.sleep(1.1)
            counts = steps.purge_expired_cache(timezone.now())["default"]
            assert counts["live_keys_seen"] == 2
            # Other clients may expire keys meanwhile: ours are at least part of the figure.
            assert counts["expired_keys_reclaimed_server_wide"] >= 0
            assert raw.keys(f"{prefix}:*short*") == []
            assert cache.get("live") == "stays" and cache.get("forever") == "stays"
            assert raw.get(unrelated) == b"x"
    finally:
        for key in raw.scan_iter(match=f"{prefix}*"):
            raw.delete(key)


def test_a_per_process_cache_is_reported_as_skipped() -> None:
    settings = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with override_settings(CACHES=settings):
        counts = steps.purge_expired_cache(timezone.now())
    assert "skipped" in counts["default"]
