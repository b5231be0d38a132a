"""Shared helpers for the metrics tests: a URLconf with known routes, a key prefix per test."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import override_settings
from django.urls import include, path

from metrics.recorder import recorder


def item_view(request: HttpRequest, pk: int) -> HttpResponse:
    # Three real queries, so the count is known.
    users = [User.objects.count(), User.objects.filter(pk=pk).count(), User.objects.exists()]
    if request.GET.get("sleep"):
        time.sleep(float(request.GET["sleep"]))
    return JsonResponse({"pk": pk, "n": len(users)})


def slow_query_view(request: HttpRequest) -> HttpResponse:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_sleep(0.06)")
        else:
            # A recursive count that takes measurable time on SQLite.
            cursor.execute(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500000)"
                " SELECT count(*) FROM c"
            )
        cursor.fetchall()
    return HttpResponse("ok")


def boom_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("failed", status=503)


def crash_view(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("the view crashed")


def whoami_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(request.user.get_username())


urlpatterns = [
    path("items/<int:pk>/", item_view, name="item"),
    path("slow-query/", slow_query_view),
    path("boom/", boom_view),
    path("crash/", crash_view),
    path("whoami/", whoami_view),
    path("", include("opsconsole.urls")),
]


@pytest.fixture
def metrics_prefix(settings: Any) -> Iterator[str]:
    """A Redis key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"test:metrics:{uuid.uuid4().hex[:12]}"
    settings.OPS_METRICS_KEY_PREFIX = prefix
    discard_pending()  # figures buffered by earlier tests are not this test's
    yield prefix
    if settings.REDIS_URL:
        from metrics.store import redis_client

        client = redis_client(settings.REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture
def metrics_urls() -> Iterator[None]:
    with override_settings(ROOT_URLCONF="tests.fixtures_metrics"):
        yield


def discard_pending() -> None:
    """Drop what this process buffered so far (requests made by other tests)."""
    recorder.discard()


@pytest.fixture
def private_redis(tmp_path: Any) -> Iterator[str]:
    """A real redis-server of this test's own (server-wide INFO counters see only this test)."""
    import shutil
    import subprocess

    import redis

    from tests.conftest import free_port

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("needs the redis-server binary")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(url, socket_timeout=0.5).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
