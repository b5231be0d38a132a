"""End to end with a real Celery worker, and two workers' worth of concurrency on PostgreSQL."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import override_settings

from alerts import services
from alerts.models import Alert, Channel, Delivery, Notification
from health.signals import health_check_failed
from metrics.signals import performance_threshold_exceeded
from tests.fixtures_alerts import T0, answer, deliver_due, make_channel


@pytest.fixture
def fast_timers(monkeypatch: pytest.MonkeyPatch, smtp_server: Any) -> Iterator[None]:
    """Short timers for the worker process (read from its environment) and for this one;
    the worker sends email to our SMTP server."""
    monkeypatch.setenv("EMAIL_URL", f"smtp://127.0.0.1:{smtp_server.port}")
    monkeypatch.setenv("ALERTS_GROUP_WAIT", "1s")
    monkeypatch.setenv("ALERTS_RETRY_BACKOFF", "1s")
    monkeypatch.setenv("ALERTS_HTTP_TIMEOUT", "1")
    monkeypatch.setenv("OPS_HTTP_ALLOW_NETWORKS", "127.0.0.0/8")
    with override_settings(
        ALERTS_GROUP_WAIT=timedelta(seconds=1),
        ALERTS_RETRY_BACKOFF=timedelta(seconds=1),
        ALERTS_HTTP_TIMEOUT=1.0,
        OPS_HTTP_ALLOW_NETWORKS=["127.0.0.0/8"],
    ):
        yield


def wait_for(predicate: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for the worker")


@pytest.fixture
def drop_worker_queue() -> Iterator[list[str]]:
    """Retries still waiting when the test ends must not linger in Redis: drop our queue."""
    queues: list[str] = []
    yield queues
    url = os.environ.get("REDIS_URL", "")
    if not url or not queues:
        return
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2)
    for queue in queues:
        client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")


@pytest.mark.slow
def test_a_real_worker_retries_a_hanging_slack_with_backoff_and_delivers_the_rest_on_time(
    fast_timers, drop_worker_queue, live_worker, smtp_server, http_server
) -> None:
    drop_worker_queue.append(live_worker["queue"])
    slack_hits: list[float] = []

    def hang(handler: Any) -> None:
        slack_hits.append(time.monotonic())
        time.sleep(2)  # beyond the 1 s timeout

    # Named first, so its deliveries are queued ahead of the others.
    slack = make_channel(Channel.Type.SLACK, name="a-slack", url=http_server(hang))
    make_channel(Channel.Type.WEBHOOK, name="b-hook", url=http_server(answer(200)))
    make_channel(Channel.Type.EMAIL, name="c-mail")
    started = time.monotonic()
    health_check_failed.send(
        sender=None, component="database", status="fail", output="refused", health_check=None
    )
    assert time.monotonic() - started < 0.5  # the sender never waits for channels
    wait_for(lambda: Delivery.objects.filter(status=Delivery.Status.DELIVERED).count() == 2)
    on_time = time.monotonic() - started
    wait_for(lambda: len(slack_hits) >= 3)
    failing = Delivery.objects.get(channel=slack)
    assert failing.error == "timed out after 1 s"
    gaps = [b - a for a, b in zip(slack_hits, slack_hits[1:], strict=False)]
    # Attempt n+1 waits timeout + backoff (1 s, then 2 s): the gaps grow by about a second
    # (0.2 s asserted, leaving room for a loaded 2-core CI machine).
    assert gaps[1] > gaps[0] + 0.2
    assert on_time < 8  # one group wait, one Slack timeout, then the others
    assert Alert.objects.get().last_notified_at is not None
    assert len(smtp_server.messages) == 1


@pytest.mark.postgres
def test_two_workers_at_once_still_send_one_notification_per_channel(
    transactional_db, memory_broker, http_server
) -> None:
    with override_settings(OPS_HTTP_ALLOW_NETWORKS=["127.0.0.0/8"]):
        make_channel(Channel.Type.WEBHOOK, url=http_server(answer(200)))
        make_channel(Channel.Type.SLACK, url=http_server(answer(200)))
        errors: list[BaseException] = []

        def worker(job: Any) -> None:
            try:
                job()
            except BaseException as exc:  # surfaced by the assertion below
                errors.append(exc)
            finally:
                connection.close()

        def storm() -> None:
            for _ in range(150):
                performance_threshold_exceeded.send(
                    sender=None,
                    metric="cpu",
                    host="web-1",
                    level="critical",
                    value=99.0,
                    threshold=90.0,
                    unit="%",
                )

        def dispatch() -> None:
            for _ in range(3):
                services.dispatch_due()
                deliver_due()

        with time_machine.travel(T0, tick=False) as clock:
            for phase in (storm, dispatch):
                threads = [threading.Thread(target=worker, args=(phase,)) for _ in range(2)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                clock.shift(30)
    assert errors == []
    alert = Alert.objects.get()
    assert alert.occurrences == 300
    assert Notification.objects.filter(status=Notification.Status.SENT).count() == 1
    assert len(http_server.requests) == 2
