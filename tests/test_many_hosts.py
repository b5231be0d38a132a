"""Many hosts on one PostgreSQL and one Redis: two simulated hosts on this machine, each with its
own host name, gunicorn, Celery worker and beat.

- every schedule entry is sent exactly once per due time, and one beat stopping leaves the other
  sending on time;
- both beats stopping fails the `scheduler` component and alerts once; one starting recovers it;
- both hosts report their own resources; a host whose processes all stop is missing, alerted once;
- requests on both hosts merge in /metrics; maintenance set through one host blocks both.

The schedule is the test's own: a task every two seconds onto a queue nobody consumes, so that
queue's length counts the sends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from django.test import override_settings

from alerts.models import Alert
from health import registry, services
from metrics import hosts
from metrics.models import Host, ResourceUsage
from opsconsole.models import ScheduleClaim, SchedulerHeartbeat
from tests.conftest import ROOT, subprocess_env
from tests.servers import Gunicorn, celery_worker_argv, free_port, start_gunicorn

pytestmark = [pytest.mark.slow]

EVERY = 2.0


def wait_for(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


class SimulatedHost:
    """One host's processes: web (gunicorn, 1 worker), a Celery worker and a beat."""

    def __init__(self, name: str, env: dict[str, str], root: Path) -> None:
        self.name = name
        self.env = {**env, "OPS_HOST_NAME": name}
        self.root = root
        self.web: Gunicorn | None = None
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(self, kind: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        with open(self.root / f"{self.name}-{kind}.log", "ab") as log:
            self.processes[kind] = subprocess.Popen(
                argv, env=env or self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )

    def start_web(self) -> None:
        self.web = start_gunicorn(
            "--workers", "1", env=self.env, log=self.root / f"{self.name}-web.log"
        )

    def start_worker(self) -> None:
        queue = self.env["OPS_TEST_DEFAULT_QUEUE"]
        extra = ("--pool=solo", "--without-mingle", "--without-gossip")
        self.spawn("worker", celery_worker_argv(f"worker@{self.name}", queue, *extra))

    def start_beat(self) -> None:
        argv = [sys.executable, "-m", "celery", "-A", "opsconsole", "beat", "--loglevel=INFO"]
        # As deployed: our own error capture on, whose sentry-sdk integration wraps beat's
        # scheduler methods (a scheduler that breaks their call shape stops beat).
        env = {**self.env, "OPS_ERRORS_CAPTURE": "1"}
        self.spawn("beat", [*argv, "--pidfile=", f"--schedule={self.root / self.name}.db"], env)

    def stop(self, kind: str, sig: int = signal.SIGTERM) -> None:
        if kind == "web":
            if self.web is not None:
                self.web.stop()
                self.web = None
            return
        proc = self.processes.pop(kind, None)
        if proc is None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop_all(self) -> None:
        for kind in ("web", "beat", "worker"):
            self.stop(kind)

    @property
    def url(self) -> str:
        assert self.web is not None
        return self.web.url


@dataclass
class Cluster:
    """The two hosts, and the broker queue the test schedule's runs pile up on."""

    a: SimulatedHost
    b: SimulatedHost
    broker: redis.Redis
    probe_queue: str

    def sent(self) -> int:
        return int(self.broker.llen(self.probe_queue))

    def sends_over(self, seconds: float) -> int:
        before = self.sent()
        time.sleep(seconds)
        return self.sent() - before


@pytest.fixture
def two_hosts(transactional_db: Any, redis_url: str, tmp_path: Path) -> Iterator[Cluster]:
    tag = f"{os.getpid()}-{free_port()}"
    probe_queue = f"probe-{tag}"
    schedule = {
        "probe": {"task": "tests.probe", "schedule": EVERY, "options": {"queue": probe_queue}}
    }
    env = subprocess_env(
        CELERY_BROKER_URL=redis_url,
        OPS_TEST_DEFAULT_QUEUE=f"work-{tag}",
        OPS_TEST_BEAT_SCHEDULE=json.dumps(schedule),
        OPS_HOST_SAMPLER="1",
        OPS_HOST_SAMPLE_INTERVAL="1s",
        OPS_METRICS_FLUSH_INTERVAL="0.5",
    )
    cluster = Cluster(
        SimulatedHost("host-a", env, tmp_path),
        SimulatedHost("host-b", env, tmp_path),
        redis.Redis.from_url(redis_url),
        probe_queue,
    )
    try:
        for host in (cluster.a, cluster.b):
            host.start_worker()
            host.start_beat()
            host.start_web()
        wait_for(lambda: SchedulerHeartbeat.objects.count() == 2, 90, "both beats to tick")
        wait_for(lambda: cluster.sent() >= 1, 30, "the schedule's first run")
        yield cluster
    finally:
        for host in (cluster.a, cluster.b):
            host.stop_all()
        cluster.broker.delete(probe_queue)


def answers(url: str, status: int) -> Callable[[], bool]:
    return lambda: httpx.get(url, timeout=5).status_code == status


def login_requests(metrics_text: str) -> float:
    """GETs of the admin login page counted in a /metrics scrape (every status)."""
    head = 'http_requests_total{route="admin/login/",method="GET"'
    return sum(float(x.rsplit(" ", 1)[1]) for x in metrics_text.splitlines() if x.startswith(head))


def test_two_hosts_send_each_run_once_report_themselves_and_share_metrics_and_maintenance(
    two_hosts: Cluster,
) -> None:
    a, b = two_hosts.a, two_hosts.b
    # Schedules: once per due time with two beats (6 runs in 12 s, twice that if both sent),
    # and on time with one.
    together = two_hosts.sends_over(6 * EVERY)
    assert 5 <= together <= 7, f"{together} sends in {6 * EVERY:g} s with two beats"
    b.stop("beat")
    alone = two_hosts.sends_over(4 * EVERY)
    assert 3 <= alone <= 5, f"{alone} sends in {4 * EVERY:g} s after host-b's beat stopped"
    # The beat that is left holds the claim.
    assert set(ScheduleClaim.objects.values_list("holder", flat=True)) == set(
        SchedulerHeartbeat.objects.filter(host="host-a").values_list("beat", flat=True)
    )

    # Each host samples itself under its own name.
    wait_for(
        lambda: {"host-a", "host-b"} <= set(ResourceUsage.objects.values_list("host", flat=True)),
        30,
        "both hosts' resource rows",
    )
    assert set(Host.objects.values_list("name", flat=True)) >= {"host-a", "host-b"}

    # Requests on both hosts merge in either host's /metrics.
    before = login_requests(httpx.get(f"{a.url}/metrics", timeout=5).text)
    for host, count in ((a, 5), (b, 7)):
        for _ in range(count):
            assert httpx.get(f"{host.url}/admin/login/", timeout=5).status_code == 200
    wait_for(
        lambda: login_requests(httpx.get(f"{a.url}/metrics", timeout=5).text) == before + 12,
        20,
        "both hosts' requests in host-a's /metrics",
    )
    assert login_requests(httpx.get(f"{b.url}/metrics", timeout=5).text) == before + 12

    # Maintenance set through one host blocks both; lifted through the other, both serve again.
    # (The console's own pages stay up for operators; the site's root is a page it blocks.)
    assert httpx.get(f"{b.url}/", timeout=5).status_code == 302
    manage = [sys.executable, "manage.py"]
    down = subprocess.run([*manage, "down"], env=a.env, cwd=ROOT, capture_output=True)
    assert down.returncode == 0, down.stderr
    for host in (a, b):
        wait_for(answers(f"{host.url}/", 503), 10, f"maintenance on {host.name}")
    up = subprocess.run([*manage, "up"], env=b.env, cwd=ROOT, capture_output=True)
    assert up.returncode == 0, up.stderr
    for host in (a, b):
        wait_for(answers(f"{host.url}/", 302), 10, f"{host.name} back up")


@pytest.fixture
def scheduler_only() -> Iterator[None]:
    saved = dict(registry._components)
    for name in list(registry._components):
        if name != "scheduler":
            registry.unregister(name)
    yield
    registry._components.clear()
    registry._components.update(saved)


def test_dead_beats_and_a_dead_host_are_noticed_and_alerted_once(
    two_hosts: Cluster, scheduler_only: None
) -> None:
    from health.checks import Scheduler

    a, b = two_hosts.a, two_hosts.b
    assert services.perform_health_check().status == "pass"
    # Both beats crash: their heartbeats stay and age past the window.
    a.stop("beat", signal.SIGKILL)
    b.stop("beat", signal.SIGKILL)
    time.sleep(Scheduler.minimum_window + 1)
    for _ in range(2):
        assert services.perform_health_check().status == "fail"
    assert Alert.objects.filter(key="health:scheduler").count() == 1
    b.start_beat()
    wait_for(lambda: services.perform_health_check().status == "pass", 60, "recovery")
    assert Alert.objects.get(key="health:scheduler").resolved_at is not None

    # host-b's processes all stop; host-a goes on reporting.
    wait_for(
        lambda: Host.objects.filter(name__in=["host-a", "host-b"]).count() == 2,
        30,
        "both hosts' samples",
    )
    b.stop_all()
    time.sleep(4)
    with override_settings(OPS_HOST_MISSING_AFTER=3):
        assert hosts.find_missing() == ["host-b"]
        time.sleep(1)
        assert hosts.find_missing() == []
    assert Alert.objects.filter(key="host:host-b:missing").count() == 1
    assert Host.objects.get(name="host-a").missing_since is None
