"""Counts are right across several gunicorn worker processes, recycled or not."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import subprocess_env
from tests.servers import start_gunicorn

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def gunicorn(tmp_path: Path, settings: Any) -> Iterator[dict[str, Any]]:
    import uuid

    prefix = f"test:metrics:{uuid.uuid4().hex[:12]}"
    access = tmp_path / "access.log"
    env = subprocess_env(OPS_METRICS_FLUSH_INTERVAL="0.2", OPS_METRICS_KEY_PREFIX=prefix)
    options = (
        "--workers",
        "2",
        # Recycle workers often: counters must survive it (no per-pid files to merge).
        "--max-requests",
        "10",
        "--access-logfile",
        str(access),
        "--access-logformat",
        "%(p)s %(s)s",
    )
    server = start_gunicorn(*options, env=env, log=tmp_path / "gunicorn.err")
    try:
        yield {"url": server.url, "access": access, "prefix": prefix}
    finally:
        server.stop()
        if settings.REDIS_URL:
            from metrics.store import redis_client

            client = redis_client(settings.REDIS_URL)
            keys = list(client.scan_iter(match=f"{prefix}:*"))
            if keys:
                client.delete(*keys)


def test_counts_are_right_with_two_worker_processes(gunicorn: dict[str, Any]) -> None:
    base = gunicorn["url"]
    total = 40
    errors: list[BaseException] = []

    def hit(n: int) -> None:
        try:
            for _ in range(n):
                assert httpx.get(f"{base}/admin/login/", timeout=10).status_code == 200
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=hit, args=(total // 4,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    pids = {line.split()[0] for line in gunicorn["access"].read_text().splitlines()}
    assert len(pids) >= 2  # several worker processes (recycled every 10 requests) served them

    deadline = time.monotonic() + 30
    count = -1.0
    while time.monotonic() < deadline:
        text = httpx.get(f"{base}/metrics", timeout=10).text
        count = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if (
                    sample.name == "http_requests_total"
                    and sample.labels["route"] == "admin/login/"
                ):
                    count += sample.value
        if count == total:
            break
        time.sleep(0.3)
    assert count == total
