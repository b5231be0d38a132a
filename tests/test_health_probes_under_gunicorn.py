"""The endpoints under a real gunicorn with sync workers, as a load balancer meets them."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from health.models import ExternalService
from tests.conftest import subprocess_env
from tests.fixtures_health import SilentServer
from tests.servers import start_gunicorn

TOKEN = "gunicorn-test-health-token-0123456789"


@pytest.fixture
def gunicorn(transactional_db: Any, tmp_path: Path) -> Iterator[str]:
    env = subprocess_env(OPS_HEALTH_TOKEN=TOKEN, DJANGO_SETTINGS_MODULE="opsconsole.settings_test")
    options = ("--workers", "2", "--worker-class", "sync", "--timeout", "30")
    with start_gunicorn(*options, env=env, log=tmp_path / "gunicorn.log") as server:
        yield server.url


def fetch(url: str, **headers: str) -> tuple[int, dict[str, Any], float]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    return status, json.loads(body), time.perf_counter() - started


@pytest.mark.slow
def test_a_hung_dependency_costs_its_timeout_not_more_under_sync_workers(gunicorn: str) -> None:
    hung = SilentServer()
    try:
        ExternalService.objects.create(
            name="ledger",
            url=f"http://127.0.0.1:{hung.port}/",
            timeout_seconds=1.5,
            allow_private_network=True,
        )
        fetch(f"{gunicorn}/health/database")  # both workers have loaded the health code
        fetch(f"{gunicorn}/health/database")
        status, body, elapsed = fetch(f"{gunicorn}/health/external", **{"X-Health-Token": TOKEN})
        assert status == 503
        assert "ledger: timed out" in body["output"]
        assert elapsed < 1.5 + 0.5, elapsed
        # A load balancer polling again is not held up by the still-hung thread.
        for _ in range(3):
            _, _, again = fetch(f"{gunicorn}/health/external")
            assert again < 1.5 + 0.5, again
    finally:
        hung.close()


@pytest.mark.slow
def test_a_bare_ip_host_and_no_token_get_statuses_only(gunicorn: str) -> None:
    status, body, _ = fetch(f"{gunicorn}/health/ready", Host="10.11.12.13")
    assert status == 200, body
    assert set(body) == {"status", "checks"}
    status, body, _ = fetch(f"{gunicorn}/health/live", Host="10.11.12.13")
    assert (status, body) == (200, {"status": "pass"})
