"""Task runtime and wait time come from a real Celery worker, through Celery's signals."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from metrics.recorder import SEP
from metrics.store import get_store

pytestmark = pytest.mark.slow

TASK = "metrics.tasks.roll_up_metrics"


@pytest.fixture
def worker_env(monkeypatch: pytest.MonkeyPatch, settings: Any) -> str:
    """The worker flushes quickly and into this test's own key prefix."""
    import uuid

    prefix = f"test:metrics:{uuid.uuid4().hex[:12]}"
    settings.OPS_METRICS_KEY_PREFIX = prefix
    monkeypatch.setenv("OPS_METRICS_KEY_PREFIX", prefix)
    monkeypatch.setenv("OPS_METRICS_FLUSH_INTERVAL", "0.2")
    return prefix


def _task_totals() -> dict[str, float]:
    return {
        name.split(SEP, 2)[2]: value
        for name, value in get_store().totals().items()
        if name.startswith(f"task{SEP}{TASK}{SEP}")
    }


def test_task_runtime_and_wait_are_measured_by_a_real_worker(
    worker_env: str, live_worker: dict[str, Any], settings: Any
) -> None:
    from metrics.tasks import roll_up_metrics

    sent_at = time.time()
    for _ in range(3):
        roll_up_metrics.delay()
    deadline = time.monotonic() + 30
    totals: dict[str, float] = {}
    while time.monotonic() < deadline:
        totals = _task_totals()
        if totals.get("rn") == 3:
            break
        time.sleep(0.2)
    assert totals.get(f"n{SEP}SUCCESS") == 3, live_worker["log"].read_text()[-2000:]
    assert totals["rn"] == 3
    # The worker's own log states each run time; ours is measured inside that span.
    logged = [
        float(s)
        for s in re.findall(
            rf"Task {re.escape(TASK)}\[[^\]]+\] succeeded in ([0-9.e-]+)s",
            live_worker["log"].read_text(),
        )
    ]
    assert len(logged) == 3
    assert 0 < totals["rs"] <= sum(logged) + 0.01
    # Wait: from our publish to the worker's start, stamped in the message headers.
    assert totals["wn"] == 3
    waited = time.time() - sent_at
    assert 0 <= totals["ws"] <= 3 * waited
    if settings.REDIS_URL:
        from metrics.store import redis_client

        client = redis_client(settings.REDIS_URL)
        keys = list(client.scan_iter(match=f"{worker_env}:*"))
        if keys:
            client.delete(*keys)


# On Redis only: the filesystem broker's broadcasts write into ./control of the checkout.
@pytest.mark.redis
def test_every_worker_samples_its_own_host_when_asked(
    worker_env: str, live_worker: dict[str, Any]
) -> None:
    import socket

    from celery.app.control import Control
    from kombu import pools

    from metrics.models import ResourceUsage
    from opsconsole.celery import app

    # kombu keeps one pool per broker URL process-wide; an earlier live_worker's teardown
    # closed the one for this Redis URL, so start from fresh pools and a fresh Control.
    pools.reset()
    control = Control(app)
    replies = control.broadcast(
        "ops_collect_resource_usage",
        reply=True,
        timeout=10,
        destination=[live_worker["hostname"]],
    )
    assert replies, live_worker["log"].read_text()[-2000:]
    answer = replies[0][live_worker["hostname"]]["ok"]
    assert answer["host"] == socket.gethostname()
    assert ResourceUsage.objects.filter(host=socket.gethostname()).count() == 1
    # Asked again within the minute, the host is not sampled twice.
    again = control.broadcast(
        "ops_collect_resource_usage", reply=True, timeout=10, destination=[live_worker["hostname"]]
    )
    assert again
    assert again[0][live_worker["hostname"]]["ok"]["skipped"] is True
