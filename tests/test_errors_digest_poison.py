"""The digest is bounded and survives poison: real events that break it are retried, then
quarantined with the reason, and never hold up the others; every task has time limits; the
digest has its own queue, so health and alerts are never starved by an ingest flood.

The poisons are real, not hooks. Ingest, scrubbing and grouping are bounded now (the events that
once crashed or stalled the digest, a lone UTF-16 surrogate and a URL-like string that sent a
scrubber regex into quadratic backtracking, are stored normally), so the poisons left are:
- a damaged inbox row, one today's ingest would refuse (left by an older release, a restore of
  a bad dump, a hand edit): its digest raises;
- an event whose issue row another transaction holds locked (a stuck shell session, a long
  migration): its digest waits on PostgreSQL until the time limit cuts it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from errors import services
from errors.digest import digest_batch
from errors.inbox import INTERRUPTED, claim
from errors.ingest import Envelope
from errors.models import ErrorProject, ErrorReport, InboxEvent, Issue
from tests.conftest import ROOT, free_port, route_digest_to, subprocess_env
from tests.fixtures_errors import make_event
from tests.servers import celery_worker_argv

pytestmark = pytest.mark.django_db(transaction=True)


def enqueue(project: ErrorProject, event: dict[str, Any]) -> None:
    payload = json.dumps(event).encode()
    services.enqueue(
        project.pk, Envelope(headers={}, event=payload, event_id=event["event_id"]), kick=False
    )


CRASH = "ValueError: event is not a JSON object"


def enqueue_damaged_row(project: ErrorProject) -> None:
    """An inbox row holding JSON that is not an event object."""
    services.enqueue(
        project.pk,
        Envelope(headers={}, event=b'["not", "an", "event"]', event_id=uuid4().hex),
        kick=False,
    )


LOCKED_FINGERPRINT = ["held-by-another-transaction"]


@contextmanager
def issue_row_locked(project: ErrorProject) -> Iterator[dict[str, Any]]:
    """Digest one event into its own issue, then hold that issue's row lock from another
    connection (as a stuck transaction would) while the test runs. Yields a fresh event of that
    issue: its digest blocks on the lock."""
    services.enqueue(
        project.pk,
        Envelope(
            headers={},
            event=json.dumps(first := make_event(fingerprint=LOCKED_FINGERPRINT)).encode(),
            event_id=first["event_id"],
        ),
        kick=False,
    )
    assert services.digest() == 1
    issue = ErrorReport.objects.get(event_id=first["event_id"]).issue
    ErrorReport.objects.filter(event_id=first["event_id"]).delete()  # leave the counts to the test
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=False) as other:
        other.execute("SELECT id FROM errors_issue WHERE id = %s FOR UPDATE", [issue.pk])
        try:
            yield make_event(fingerprint=LOCKED_FINGERPRINT)
        finally:
            other.rollback()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; worker log:\n{log.read_text()[-3000:]}")


# --- in process ------------------------------------------------------------------------------
def test_a_batch_stops_at_its_byte_budget(project):
    proj, _ = project
    for _ in range(6):
        enqueue(proj, make_event(message="x" * 100_000, exception=None))
    size = len(InboxEvent.objects.earliest("id").payload)
    assert digest_batch(batch_size=500, max_bytes=int(size * 2.5)) == 2
    with override_settings(OPS_ERRORS_DIGEST_BATCH_BYTES=size * 3):
        assert digest_batch() == 3
    assert ErrorReport.objects.count() == 5
    # One event larger than the whole budget still goes through, alone.
    assert digest_batch(max_bytes=10) == 1
    assert not InboxEvent.objects.exists()


@override_settings(OPS_ERRORS_DIGEST_RETRY_DELAY=0)
def test_a_crashing_event_is_retried_then_quarantined_and_the_batch_goes_on(project):
    proj, _ = project
    good = [make_event() for _ in range(10)]
    enqueue(proj, good[0])
    enqueue_damaged_row(proj)
    for event in good[1:]:
        enqueue(proj, event)

    services.digest()

    assert ErrorReport.objects.count() == 10
    poison = InboxEvent.objects.get()
    assert poison.attempts == settings.OPS_ERRORS_DIGEST_MAX_ATTEMPTS == 3
    assert poison.quarantined_at is not None
    assert poison.last_error == CRASH
    # Quarantined means never taken again.
    enqueue(proj, later := make_event())
    assert services.digest() == 1
    assert InboxEvent.objects.get().pk == poison.pk
    assert ErrorReport.objects.filter(event_id=later["event_id"]).exists()


def test_a_failed_event_waits_for_its_retry_delay(project):
    proj, _ = project
    enqueue_damaged_row(proj)
    with override_settings(OPS_ERRORS_DIGEST_RETRY_DELAY=30):
        assert digest_batch() == 1
        assert digest_batch() == 0  # not before its delay
        row = InboxEvent.objects.get()
        assert row.attempts == 1 and row.quarantined_at is None
        with time_machine.travel(timezone.now() + timedelta(seconds=31)):
            assert digest_batch() == 1
        assert InboxEvent.objects.get().attempts == 2


def test_an_event_whose_worker_died_is_counted_and_finally_quarantined(project):
    proj, _ = project
    enqueue(proj, make_event())
    lease = float(settings.CELERY_TASK_TIME_LIMIT) + 61
    now = timezone.now()
    # Three workers take it and die before they finish (a hard time limit, an OOM kill).
    for n in range(3):
        with time_machine.travel(now + timedelta(seconds=lease * n)):
            claimed, _ = claim(500, 2**30)
            assert [c.attempts for c in claimed] == [n + 1]
            assert claim(500, 2**30) == ([], 0)  # held: no other worker takes it meanwhile
    with time_machine.travel(now + timedelta(seconds=lease * 3)):
        assert digest_batch() == 1
    row = InboxEvent.objects.get()
    assert row.quarantined_at is not None and row.last_error == INTERRUPTED
    assert not ErrorReport.objects.exists()


def test_a_slow_event_is_cut_off_at_the_digest_time_limit(project):
    proj, _ = project
    with issue_row_locked(proj) as slow:
        enqueue(proj, slow)
        enqueue(proj, good := make_event())
        started = time.monotonic()
        with override_settings(OPS_ERRORS_DIGEST_TIME_LIMIT=0.5, OPS_ERRORS_DIGEST_RETRY_DELAY=0):
            services.digest()
    # Each of 3 attempts is cut at 0.5 s (the first twice: in its batch, then alone).
    assert time.monotonic() - started < 10
    assert ErrorReport.objects.get().event_id == good["event_id"]
    row = InboxEvent.objects.get()
    assert row.quarantined_at is not None
    assert row.last_error == "the digest took longer than 0.5 s (OPS_ERRORS_DIGEST_TIME_LIMIT)"


def test_the_backlog_health_check_ignores_quarantined_events(project):
    from errors.health import ErrorDigestBacklog

    proj, _ = project
    enqueue_damaged_row(proj)
    InboxEvent.objects.update(
        quarantined_at=timezone.now(), received_at=timezone.now() - timedelta(days=1)
    )
    ErrorDigestBacklog().run()  # no exception: nothing waits for a worker


def test_quarantined_events_are_listed_read_only_in_the_admin(client, admin, project):
    proj, _ = project
    enqueue_damaged_row(proj)
    with override_settings(OPS_ERRORS_DIGEST_RETRY_DELAY=0):
        services.digest()
    row = InboxEvent.objects.get()
    client.force_login(admin)
    listing = client.get("/admin/errors/inboxevent/?quarantined_at__isempty=0")
    assert listing.status_code == 200
    assert b"quarantined" in listing.content and CRASH.encode() in listing.content
    page = client.get(f"/admin/errors/inboxevent/{row.pk}/change/")
    assert page.status_code == 200
    assert CRASH.encode() in page.content and b'name="last_error"' not in page.content


# --- time limits and queues ------------------------------------------------------------------
def registered_tasks() -> dict[str, Any]:
    from opsconsole.celery import app

    app.loader.import_default_modules()
    return {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}


def test_every_task_of_every_app_has_soft_and_hard_time_limits():
    from opsconsole.celery import app

    tasks = registered_tasks()
    apps = {name.split(".")[0] for name in tasks}
    assert {"alerts", "backups", "errors", "health", "maintenance", "metrics"} <= apps
    for name, task in tasks.items():
        soft = task.soft_time_limit or app.conf.task_soft_time_limit
        hard = task.time_limit or app.conf.task_time_limit
        assert soft and hard and soft < hard, name
    backup = tasks["backups.tasks.create_backup"]
    assert backup.soft_time_limit == settings.OPS_BACKUP_TASK_TIME_LIMIT >= 3600
    assert tasks["health.tasks.perform_health_check"].time_limit <= 60  # runs every minute


def test_the_digest_is_routed_to_its_own_queue():
    from opsconsole.celery import app

    route = app.amqp.router.route({}, "errors.tasks.digest_inbox")
    assert route["queue"].name == settings.OPS_ERRORS_DIGEST_QUEUE == "ingest"
    assert app.amqp.router.route({}, "health.tasks.perform_health_check")["queue"].name == (
        "celery"
    )
    assert settings.CELERY_WORKER_MAX_MEMORY_PER_CHILD == 512 * 1024


def test_the_procfile_runs_a_worker_for_each_queue():
    processes = dict(
        line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
    )
    assert "-Q celery " in processes["worker"]
    assert "-Q ${OPS_ERRORS_DIGEST_QUEUE:-ingest} " in processes["ingest"]


# --- real workers ----------------------------------------------------------------------------
@pytest.fixture
def workers(redis_url: str, tmp_path: Path) -> Iterator[Callable[..., dict[str, Any]]]:
    """Start real Celery workers (prefork, as deployed) on Redis and the test database, each
    on the given queues, as `manage.py serve` and the Procfile start them."""
    from opsconsole.celery import app
    from tests.conftest import reset_celery_connections

    configured = app.amqp.router.route({}, "errors.tasks.digest_inbox")["queue"].name
    assert configured == settings.OPS_ERRORS_DIGEST_QUEUE != settings.CELERY_TASK_DEFAULT_QUEUE
    tag = f"t{os.getpid()}-{free_port()}"
    default_queue, ingest_queue = f"{tag}-celery", f"{tag}-ingest"
    old = (app.conf.broker_url, app.conf.task_default_queue, app.conf.task_routes)
    app.conf.update(broker_url=redis_url, task_default_queue=default_queue)
    route_digest_to(app, ingest_queue)
    reset_celery_connections(app)
    started: list[subprocess.Popen[bytes]] = []

    def start(which: str, *, env: dict[str, str] | None = None) -> dict[str, Any]:
        queue = default_queue if which == "default" else ingest_queue
        log = tmp_path / f"{which}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(  # noqa: S603
                celery_worker_argv(
                    f"{which}-{tag}@localhost",
                    queue,
                    "--pool=prefork",
                    "--concurrency=1",
                    "--without-mingle",
                    "--without-gossip",
                ),
                cwd=ROOT,
                env=subprocess_env(
                    CELERY_BROKER_URL=redis_url,
                    OPS_TEST_DEFAULT_QUEUE=default_queue,
                    OPS_ERRORS_DIGEST_QUEUE=ingest_queue,
                    **(env or {}),
                ),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append(proc)
        wait_for(lambda: b"ready." in log.read_bytes(), 60, f"the {which} worker", log)
        return {"process": proc, "log": log, "queue": queue}

    yield start
    for proc in started:
        proc.send_signal(signal.SIGTERM)
    for proc in started:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    import redis

    redis.Redis.from_url(redis_url).delete(default_queue, ingest_queue)
    app.conf.update(broker_url=old[0], task_default_queue=old[1])
    route_digest_to(app, old[2]["errors.tasks.digest_inbox"]["queue"])
    reset_celery_connections(app)


@pytest.mark.slow
@pytest.mark.redis
def test_a_real_worker_quarantines_poison_and_digests_everything_else(workers, project):
    proj, _ = project
    good = [make_event() for _ in range(20)]
    with issue_row_locked(proj) as slow:
        for event in good[:10]:
            enqueue(proj, event)
        enqueue_damaged_row(proj)
        enqueue(proj, slow)
        for event in good[10:]:
            enqueue(proj, event)
        worker = workers(
            "ingest",
            env={"OPS_ERRORS_DIGEST_TIME_LIMIT": "1s", "OPS_ERRORS_DIGEST_RETRY_DELAY": "0"},
        )
        # Its start kicks the digest (worker_ready); the beat schedule would do the same.
        wait_for(
            lambda: InboxEvent.objects.filter(quarantined_at__isnull=False).count() == 2,
            60,
            "two quarantined events",
            worker["log"],
        )
    assert set(ErrorReport.objects.values_list("event_id", flat=True)) == {
        e["event_id"] for e in good
    }
    crashing, stalled = InboxEvent.objects.order_by("id")  # in the order they were sent
    assert (stalled.attempts, stalled.last_error) == (
        3,
        "the digest took longer than 1 s (OPS_ERRORS_DIGEST_TIME_LIMIT)",
    )
    assert (crashing.attempts, crashing.last_error) == (3, CRASH)

    # Later events are not held up by the quarantined ones.
    enqueue(proj, later := make_event())
    from errors.tasks import digest_inbox

    digest_inbox.delay()
    wait_for(
        lambda: ErrorReport.objects.filter(event_id=later["event_id"]).exists(),
        30,
        "the later event",
        worker["log"],
    )
    assert Issue.objects.get(reports__event_id=later["event_id"]).count == 21


@pytest.mark.slow
@pytest.mark.redis
def test_health_checks_run_while_the_digest_queue_holds_a_large_backlog(workers, project):
    from errors.tasks import digest_inbox
    from health.models import HealthCheck
    from health.tasks import perform_health_check
    from opsconsole.celery import app

    proj, _ = project
    for _ in range(300):
        enqueue(proj, make_event())
    default = workers("default")
    with app.producer_or_acquire() as producer:
        for _ in range(5000):
            digest_inbox.apply_async(producer=producer)
    ingest = workers("ingest")  # busy with the backlog from now on
    asked = timezone.now()
    perform_health_check.delay()
    wait_for(
        lambda: HealthCheck.objects.filter(created_at__gte=asked).exists(),
        20,
        "a health check",
        default["log"],
    )
    import redis

    waiting = redis.Redis.from_url(os.environ["REDIS_URL"]).llen(ingest["queue"])
    assert waiting > 0, "the digest backlog was already gone: the test proves nothing"


@pytest.mark.slow
@pytest.mark.redis
def test_celerys_own_soft_time_limit_counts_against_the_event_too(workers, project):
    """With the per-batch limit set above the task's soft limit, Celery's SoftTimeLimitExceeded
    ends the task: the events go back at once with the reason, and the next runs (beat's, here
    the test's) digest the others and quarantine the slow one."""
    from errors.tasks import digest_inbox

    proj, _ = project
    locked = issue_row_locked(proj)
    enqueue(proj, locked.__enter__())
    good = [make_event() for _ in range(5)]
    for event in good:
        enqueue(proj, event)
    worker = workers(
        "ingest",
        env={
            "OPS_TASK_SOFT_TIME_LIMIT": "2s",
            "OPS_TASK_TIME_LIMIT": "30s",
            "OPS_ERRORS_DIGEST_TIME_LIMIT": "60s",
            "OPS_ERRORS_DIGEST_RETRY_DELAY": "0",
        },
    )

    kicked = [0.0]

    def quarantined() -> bool:
        if InboxEvent.objects.filter(quarantined_at__isnull=False).exists():
            return True
        if time.monotonic() - kicked[0] > 3:  # what beat does every OPS_ERRORS_DIGEST_INTERVAL
            # A message carries its publisher's limits: these are the worker's (and its beat's).
            digest_inbox.apply_async(soft_time_limit=2, time_limit=30)
            kicked[0] = time.monotonic()
        return False

    try:
        wait_for(quarantined, 90, "the slow event's quarantine", worker["log"])
    finally:
        locked.__exit__(None, None, None)
    wait_for(lambda: ErrorReport.objects.count() == len(good), 30, "the good events", worker["log"])
    slow = InboxEvent.objects.get()
    assert (slow.attempts, slow.last_error) == (3, "the digest task reached its soft time limit")
    assert b"Soft time limit (2" in worker["log"].read_bytes()
