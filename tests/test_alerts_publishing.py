"""Alert tasks are queued from requests (health runs, thresholds, admin actions): a broker that
is down or hung costs the request a fraction of a second, never Celery's seconds of retries."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from celery import current_app

from alerts.publishing import SEND_SYSTEM_ALERT, publish
from tests.servers import SilentServer, free_port


@pytest.fixture
def broker_at(request: pytest.FixtureRequest) -> Iterator[str]:
    """A broker URL that refuses connections ("closed") or accepts and never answers ("silent")."""
    silent = SilentServer()
    port = silent.port if request.param == "silent" else free_port()
    before = current_app.conf.broker_url
    current_app.conf.update(broker_url=f"redis://127.0.0.1:{port}/0")
    yield request.param
    current_app.conf.update(broker_url=before)
    silent.close()


@pytest.mark.parametrize("broker_at", ["closed", "silent"], indirect=True)
def test_publishing_to_a_dead_or_hung_broker_returns_within_a_second_and_logs_it(
    broker_at: str, caplog: pytest.LogCaptureFixture, settings: object
) -> None:
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="alerts.publishing"):
        publish(SEND_SYSTEM_ALERT, (123,))
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"{broker_at} broker held the publish {elapsed:.2f} s"
    assert "could not queue alerts.tasks.send_system_alert" in caplog.text
