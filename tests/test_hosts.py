"""Every host is watched: each host's processes sample it (one sampler per host), and a host
that stops reporting is marked missing and alerted once, not silently dropped."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.test import override_settings
from django.utils import timezone

from alerts.models import Alert
from health.checks import Disk, Memory
from metrics import hosts
from metrics.models import Host, ResourceUsage
from metrics.sampler import HostSampler
from tests.conftest import ROOT, subprocess_env
from tests.servers import start_gunicorn


def test_a_quiet_host_is_marked_missing_and_alerted_once(db: Any) -> None:
    start = timezone.now()
    hosts.mark_seen("web-1", start)
    hosts.mark_seen("web-2", start + timedelta(minutes=3))
    with override_settings(OPS_HOST_MISSING_AFTER=120):
        later = start + timedelta(minutes=4)
        assert hosts.find_missing(later) == ["web-1"]
        assert hosts.find_missing(later + timedelta(minutes=1)) == []  # once, not every minute
    assert Host.objects.get(name="web-1").missing_since == later
    alert = Alert.objects.get(key="host:web-1:missing")
    assert alert.state == "firing" and "web-1 stopped reporting" in alert.summary
    assert not Alert.objects.filter(key="host:web-2:missing").exists()


def test_a_missing_host_that_reports_again_resolves_its_alert(db: Any) -> None:
    start = timezone.now() - timedelta(minutes=10)
    hosts.mark_seen("db-1", start)
    hosts.find_missing()
    hosts.mark_seen("db-1")
    assert Host.objects.get(name="db-1").missing_since is None
    assert Alert.objects.get(key="host:db-1:missing").resolved_at is not None


def test_forgetting_a_retired_host_removes_it_and_its_alert(db: Any) -> None:
    hosts.mark_seen("old-1", timezone.now() - timedelta(hours=1))
    hosts.find_missing()
    hosts.forget("old-1")
    assert not Host.objects.filter(name="old-1").exists()
    assert Alert.objects.get(key="host:old-1:missing").resolved_at is not None


def test_only_one_sampler_per_host_holds_the_lock_and_another_takes_over(db: Any) -> None:
    first, second = HostSampler(60), HostSampler(60)
    try:
        assert first.holds_lock()
        assert not second.holds_lock()
        assert first.lock_file is not None
        first.lock_file.close()  # the holder's process ended: the kernel drops its lock
        first.lock_file = None
        assert second.holds_lock()
    finally:
        for sampler in (first, second):
            if sampler.lock_file is not None:
                sampler.lock_file.close()


def test_disk_and_memory_checks_name_the_host_they_describe(db: Any) -> None:
    with override_settings(OPS_HOST_NAME="db-7", OPS_HEALTH_DISK_WARN=0.0):
        disk, memory = Disk(), Memory(warn_percent=0.0)
        for check in (disk, memory):
            with pytest.raises(Exception, match="on db-7"):
                check.run()
            assert {"measurement": "host", "observedValue": "db-7", "observedUnit": ""} in (
                check.observations
            )


@pytest.fixture
def two_web_hosts(transactional_db: Any, tmp_path: Any) -> Iterator[dict[str, Any]]:
    """Two web-only hosts on this machine: gunicorn each, with its own host name."""
    servers = {}
    try:
        for name in ("web-a", "web-b"):
            env = subprocess_env(
                OPS_HOST_NAME=name,
                OPS_HOST_SAMPLER="1",
                OPS_HOST_SAMPLE_INTERVAL="1s",
                OPS_METRICS_FLUSH_INTERVAL="0.5",
            )
            servers[name] = start_gunicorn("--workers", "2", env=env, log=tmp_path / f"{name}.log")
            servers[name].env = env  # type: ignore[attr-defined]
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def wait_for(predicate: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_web_only_hosts_sample_themselves_and_a_stopped_one_is_missing(
    two_web_hosts: dict[str, Any],
) -> None:
    for server in two_web_hosts.values():
        for _ in range(4):  # reach both workers: each starts its sampler on its first request
            assert httpx.get(f"{server.url}/health/live", timeout=5).status_code == 200
    wait_for(
        lambda: set(ResourceUsage.objects.values_list("host", flat=True)) == {"web-a", "web-b"},
        30,
        "both hosts' samples",
    )
    two_web_hosts.pop("web-b").stop()
    time.sleep(3)
    with override_settings(OPS_HOST_MISSING_AFTER=2):
        assert hosts.find_missing() == ["web-b"]
        assert hosts.find_missing() == []
    assert Alert.objects.filter(key="host:web-b:missing").count() == 1
    assert Host.objects.get(name="web-a").missing_since is None


def login_requests(metrics_text: str) -> float:
    """GETs of the admin login page counted in a /metrics scrape (every status)."""
    total = 0.0
    for line in metrics_text.splitlines():
        head = 'http_requests_total{route="admin/login/",method="GET"'
        if line.startswith(head):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.slow
def test_two_hosts_merge_in_metrics_and_maintenance_through_one_blocks_both(
    two_web_hosts: dict[str, Any], redis_url: str
) -> None:
    a, b = two_web_hosts["web-a"], two_web_hosts["web-b"]
    # Counters live in Redis and outlast a test run: count what this test adds.
    before = login_requests(httpx.get(f"{a.url}/metrics", timeout=5).text)
    for server, count in ((a, 5), (b, 7)):
        for _ in range(count):
            assert httpx.get(f"{server.url}/admin/login/", timeout=5).status_code == 200
    # Each process flushes its counters every 0.5 s; a scrape of either host sees both.
    scrape = {"text": ""}

    def counted() -> float:
        scrape["text"] = httpx.get(f"{a.url}/metrics", timeout=5).text
        return login_requests(scrape["text"])

    try:
        wait_for(lambda: counted() == before + 12, 20, "both hosts' requests in web-a's /metrics")
    except AssertionError:
        lines = [x for x in scrape["text"].splitlines() if x.startswith("http_requests_total")]
        raise AssertionError("\n".join(lines[:20])) from None
    assert login_requests(httpx.get(f"{b.url}/metrics", timeout=5).text) == before + 12

    # The console's own pages stay up for operators; the site's root is a page it takes down.
    assert httpx.get(f"{a.url}/", timeout=5).status_code == 302
    manage = [sys.executable, "manage.py"]
    down = subprocess.run(
        [*manage, "down", "--message", "upgrading"], env=a.env, cwd=ROOT, capture_output=True
    )
    assert down.returncode == 0, down.stderr
    for server in (a, b):
        wait_for(
            lambda s=server: httpx.get(f"{s.url}/", timeout=5).status_code == 503,
            10,
            f"maintenance on {server.url}",
        )
    up = subprocess.run([*manage, "up"], env=b.env, cwd=ROOT, capture_output=True)
    assert up.returncode == 0, up.stderr
    for server in (a, b):
        wait_for(
            lambda s=server: httpx.get(f"{s.url}/", timeout=5).status_code == 302,
            10,
            f"{server.url} back up",
        )
