"""Two or more beats: every due run is sent once, one beat stopping leaves the other sending on
time, and a scheduler that stopped ticking fails the `scheduler` health component.

Real beat processes (celery beat with opsconsole.scheduler.OpsScheduler) on the test database
and a Redis broker; a schedule of the test's own that queues a task every two seconds on a queue
nobody consumes, so the queue's length is the number of sends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from django.utils import timezone

from health import registry, services
from health.checks import Scheduler
from health.models import ComponentState
from opsconsole.models import ScheduleClaim, SchedulerHeartbeat
from opsconsole.scheduler import claim
from tests.conftest import subprocess_env
from tests.servers import free_port

EVERY = 2.0


def wait_for(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Beats:
    """Beat processes sharing one schedule, database and broker."""

    def __init__(self, redis_url: str, root: Path) -> None:
        self.queue = f"ha-{os.getpid()}-{free_port()}"
        self.redis = redis.Redis.from_url(redis_url)
        schedule = {
            "ha-probe": {
                "task": "opsconsole.tests.ha_probe",
                "schedule": EVERY,
                "options": {"queue": self.queue},
            }
        }
        self.env = subprocess_env(
            CELERY_BROKER_URL=redis_url, OPS_TEST_BEAT_SCHEDULE=json.dumps(schedule)
        )
        self.root = root
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        argv = [sys.executable, "-m", "celery", "-A", "opsconsole", "beat"]
        argv += ["--loglevel=INFO", "--pidfile=", f"--schedule={self.root / name}.db"]
        with open(self.root / f"{name}.log", "ab") as log:
            self.processes[name] = subprocess.Popen(
                argv, env=self.env, cwd=self.root, stdout=log, stderr=subprocess.STDOUT
            )

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.processes.pop(name)
        proc.send_signal(sig)
        proc.wait(timeout=20)

    def sent(self) -> int:
        return int(self.redis.llen(self.queue))

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace")[-2000:] for p in self.root.glob("*.log"))

    def close(self) -> None:
        for name in list(self.processes):
            self.stop(name, signal.SIGKILL)
        self.redis.delete(self.queue)


@pytest.fixture
def beats(transactional_db: Any, redis_url: str, tmp_path: Path) -> Iterator[Beats]:
    group = Beats(redis_url, tmp_path)
    try:
        yield group
    finally:
        group.close()


def sends_over(beats: Beats, seconds: float) -> int:
    before = beats.sent()
    time.sleep(seconds)
    return beats.sent() - before


@pytest.mark.slow
def test_two_beats_send_each_run_once_and_one_goes_on_alone(beats: Beats) -> None:
    beats.start("one")
    beats.start("two")
    wait_for(lambda: SchedulerHeartbeat.objects.count() == 2, 60, "both beats to tick")
    wait_for(lambda: beats.sent() >= 1, 30, "the first send")
    together = sends_over(beats, 6 * EVERY)
    # Once per two seconds: 6 (a phase shift between the beats may add one); twice that if
    # both beats sent every run.
    assert 5 <= together <= 7, f"{together} sends in {6 * EVERY:g} s\n{beats.logs()}"
    beats.stop("one")
    alone = sends_over(beats, 4 * EVERY)
    assert 3 <= alone <= 5, f"{alone} sends in {4 * EVERY:g} s after one beat stopped"
    holders = set(ScheduleClaim.objects.values_list("holder", flat=True))
    assert len(holders) == 1  # the beat that is left holds the claim


@pytest.fixture
def scheduler_only() -> Iterator[None]:
    saved = dict(registry._components)
    for name in list(registry._components):
        if name != "scheduler":
            registry.unregister(name)
    yield
    registry._components.clear()
    registry._components.update(saved)


@pytest.mark.slow
def test_a_dead_scheduler_fails_its_component_alerts_once_and_recovers(
    beats: Beats, scheduler_only: None
) -> None:
    from alerts.models import Alert

    beats.start("one")
    wait_for(lambda: SchedulerHeartbeat.objects.exists(), 60, "the beat to tick")
    assert services.perform_health_check().status == "pass"
    beats.stop("one", signal.SIGKILL)  # a crash: its heartbeat row stays and ages
    # Twice the shortest schedule (2 s), but never sooner than the check's floor.
    time.sleep(Scheduler.minimum_window + 1)
    for _ in range(2):
        assert services.perform_health_check().status == "fail"
    state = ComponentState.objects.get(component="scheduler")
    assert state.status == "fail"
    assert Alert.objects.filter(key="health:scheduler").count() == 1
    beats.start("two")
    wait_for(lambda: services.perform_health_check().status == "pass", 60, "recovery")
    assert Alert.objects.get(key="health:scheduler").resolved_at is not None


def test_a_claim_is_won_once_until_it_lapses(db: Any) -> None:
    now = timezone.now()
    assert claim("entry", 10, "beat-a", now)
    assert not claim("entry", 10, "beat-b", now + timedelta(seconds=5))
    assert claim("entry", 10, "beat-b", now + timedelta(seconds=10))
    assert ScheduleClaim.objects.get(name="entry").holder == "beat-b"


def test_without_any_beat_the_scheduler_component_says_how_to_start_one(db: Any) -> None:
    from health_check.exceptions import ServiceUnavailable

    with pytest.raises(ServiceUnavailable, match="start Celery beat"):
        Scheduler().run()
