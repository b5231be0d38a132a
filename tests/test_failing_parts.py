"""Failing parts, against real processes: gunicorn, a Celery worker and beat, on a private
PostgreSQL cluster and a private Redis server this module starts, stops and restarts.

Throughout every outage: /health/live answers 200 (polled every 0.15 s), /health/ready answers
503 with JSON within its timeout while a dependency it covers is down, health and ingest never
answer 500, no ingest request waits a second on a broker publish, and every event accepted
(2xx) is digested once the part is back, without restarting gunicorn or the worker.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest

from health.checks import oldest_wait, queue_depth
from tests.failing_support import (
    PG_BIN,
    ROOT,
    Answer,
    PrivatePostgres,
    PrivateRedis,
    Service,
    beat_argv,
    free_port,
    gunicorn_argv,
    polling_live,
    request,
    scratch_dir,
    spawn,
    wait_until,
    worker_argv,
)
from tests.fixtures_errors import envelope_bytes, make_event
from tests.fixtures_health import SilentServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(90),
    pytest.mark.skipif(
        not (PG_BIN / "initdb").exists() or shutil.which("redis-server") is None,
        reason=f"needs PostgreSQL's initdb in {PG_BIN} and redis-server",
    ),
]

TOKEN = "failing-parts-health-token-0123456789"
CHECK_TIMEOUT = 1.0
# A probe answers within its check timeout; the margin covers a loaded 2-core CI machine.
PROBE_BUDGET = CHECK_TIMEOUT + 0.75
QUEUE_MAX_WAIT = 3.0


@dataclass
class Stack:
    root: Path
    postgres: PrivatePostgres
    redis: PrivateRedis
    env: dict[str, str]
    base: str
    gunicorn: Service
    worker: Service
    beat: Service
    project_id: int
    public_key: str

    def pids(self) -> dict[str, Any]:
        """gunicorn's master and its workers, the Celery worker's main process."""
        workers = sorted(p.pid for p in psutil.Process(self.gunicorn.pid).children())
        return {
            "gunicorn": self.gunicorn.pid,
            "gunicorn workers": workers,
            "worker": self.worker.pid,
            "beat": self.beat.pid,
        }

    def logs(self) -> str:
        return "\n".join(
            f"--- {s.name}\n{s.tail()}" for s in (self.gunicorn, self.worker, self.beat)
        )


def _database() -> str:
    return "ops_failing"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    root = scratch_dir()
    postgres = PrivatePostgres(root)
    redis = PrivateRedis(root)
    services: list[Service] = []
    try:
        postgres.init()
        postgres.start()
        postgres.sql("postgres", f"CREATE DATABASE {_database()}")
        redis.start()
        closed_port = free_port()  # nothing listens here: the S3 endpoint is unreachable
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OPS_TEST_", "SENTRY_", "AWS_", "CELERY_"))
        }
        env.update(
            DJANGO_SETTINGS_MODULE="opsconsole.settings_test",
            PYTHONPATH=str(ROOT),
            DATABASE_URL=postgres.url(_database()),
            REDIS_URL=redis.url,
            CELERY_BROKER_URL=redis.url,
            OPS_VAR_DIR=str(root / "var"),
            OPS_HEALTH_TOKEN=TOKEN,
            OPS_HEALTH_CHECK_TIMEOUT=str(CHECK_TIMEOUT),
            OPS_HEALTH_CACHE_TTL="0",
            OPS_HEALTH_QUEUE_MAX_WAIT=str(QUEUE_MAX_WAIT),
            OPS_ERRORS_DIGEST_INTERVAL="2s",
            BACKUP_STORAGE_URL="s3://ops-failing/backups",
            AWS_ENDPOINT_URL_S3=f"http://127.0.0.1:{closed_port}",
            AWS_ACCESS_KEY_ID="failing-parts",
            AWS_SECRET_ACCESS_KEY="failing-parts-not-a-secret",  # noqa: S105
        )
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
        created = subprocess.run(
            [*manage, "createerrorproject", "billing", "--json"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        import json

        dsn = urlsplit(json.loads(created.stdout)["dsn"])
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        gunicorn = spawn("gunicorn", gunicorn_argv(port), env, root)
        services.append(gunicorn)
        worker = spawn("worker", worker_argv(f"failing-{port}@localhost"), env, root)
        services.append(worker)
        beat = spawn("beat", beat_argv(root / "beat-schedule"), env, root)
        services.append(beat)
        wait_until(lambda: b"ready." in worker.log.read_bytes(), 60, "the worker to start")
        wait_until(
            lambda: request(f"{base}/health/ready").status == 200, 60, "gunicorn to be ready"
        )
        yield Stack(
            root=root,
            postgres=postgres,
            redis=redis,
            env=env,
            base=base,
            gunicorn=gunicorn,
            worker=worker,
            beat=beat,
            project_id=int(dsn.path.strip("/")),
            public_key=str(dsn.username),
        )
    finally:
        for service in reversed(services):
            service.stop()
        redis.stop()
        if (postgres.data / "postmaster.pid").exists():
            postgres.stop()
        if not os.environ.get("OPS_TEST_KEEP_SCRATCH"):  # keep the logs to read them
            shutil.rmtree(root, ignore_errors=True)


# --- helpers ----------------------------------------------------------------------------------
def send_event(stack: Stack, base: str | None = None) -> tuple[str, Answer]:
    event = make_event()
    answer = request(
        f"{base or stack.base}/api/{stack.project_id}/envelope/",
        data=envelope_bytes(event),
        headers={
            "Content-Type": "application/x-sentry-envelope",
            "X-Sentry-Auth": f"Sentry sentry_key={stack.public_key}, sentry_version=7",
        },
    )
    return event["event_id"], answer


def ready(base: str) -> Answer:
    return request(f"{base}/health/ready", headers={"X-Health-Token": TOKEN})


def component(base: str, name: str) -> Answer:
    return request(f"{base}/health/{name}", headers={"X-Health-Token": TOKEN})


def assert_failing_in_time(answer: Answer, budget: float = PROBE_BUDGET) -> None:
    assert answer.status == 503, (answer.status, answer.body[:300])
    assert answer.json()["status"] == "fail"
    assert answer.seconds < budget, answer.seconds


def traffic_during(
    stack: Stack, seconds: float, accepted: list[str], base: str | None = None
) -> list[Answer]:
    """Events every 0.1 s for `seconds`: none answered 500; the accepted ids go in `accepted`."""
    ingest: list[Answer] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        event_id, answer = send_event(stack, base)
        assert answer.status != 500, answer.body[:300]
        if 200 <= answer.status < 300:
            accepted.append(event_id)
        ingest.append(answer)
        time.sleep(0.1)
    return ingest


@pytest.fixture
def accepted() -> list[str]:
    """Event ids answered 2xx during the test."""
    return []


def digested(stack: Stack, event_ids: list[str]) -> set[str]:
    rows = stack.postgres.sql(
        _database(),
        "SELECT event_id FROM errors_errorreport WHERE event_id = ANY(%s)",
        (event_ids,),
    )
    return {row[0] for row in rows}


def assert_recovered(stack: Stack, pids: dict[str, Any], accepted: list[str]) -> None:
    """Ready again, every accepted event digested, and nothing was restarted."""
    try:
        wait_until(lambda: ready(stack.base).status == 200, 30, "/health/ready to pass again")
        event_id, answer = send_event(stack)
        assert answer.status == 200, answer.body[:300]
        accepted.append(event_id)
        wait_until(
            lambda: digested(stack, accepted) == set(accepted), 30, "every event to be digested"
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stack.logs()}") from None
    assert stack.pids() == pids
    assert stack.gunicorn.alive() and stack.worker.alive() and stack.beat.alive()


def assert_live_throughout(answers: list[Answer]) -> None:
    assert len(answers) >= 5, "the poller barely ran"
    bad = [(a.status, round(a.seconds, 2)) for a in answers if a.status != 200]
    assert not bad, bad
    assert max(a.seconds for a in answers) < 1.0


def publish_nap(stack: Stack, seconds: float, marker: Path, countdown: float = 0) -> None:
    """Queue the test task on the private broker, stamped like every task this app sends."""
    from opsconsole.celery import app

    with app.connection_for_write(stack.redis.url) as conn:
        app.send_task(
            "tests.failing_support.nap",
            args=[seconds, str(marker)],
            connection=conn,
            queue="celery",
            retry=False,
            countdown=countdown or None,
        )


def marker_lines(marker: Path) -> list[str]:
    return marker.read_text().splitlines() if marker.exists() else []


# --- scenarios --------------------------------------------------------------------------------
def test_it_survives_redis_stopped_and_restarted_under_traffic(
    stack: Stack, accepted: list[str]
) -> None:
    pids = stack.pids()
    marker = stack.root / "redis-nap.log"
    with polling_live(stack.base) as live:
        traffic_during(stack, 0.5, accepted)
        # Tasks in flight when the broker goes: one running, one waiting for its countdown
        # (the worker holds both messages unacknowledged).
        publish_nap(stack, 1.0, marker)
        publish_nap(stack, 0.1, stack.root / "redis-later.log", countdown=60)
        wait_until(lambda: marker_lines(marker), 20, "the task to start")
        stack.redis.stop()
        try:
            ingest = traffic_during(stack, 2.0, accepted)
            assert_failing_in_time(ready(stack.base))
            # A dead broker costs an ingest request nothing like Celery's publish retries.
            assert max(a.seconds for a in ingest) < 1.0, [round(a.seconds, 2) for a in ingest]
            assert any(200 <= a.status < 300 for a in ingest)
        finally:
            stack.redis.start()
        traffic_during(stack, 0.5, accepted)
        assert_recovered(stack, pids, accepted)
    assert_live_throughout(live.answers)


def test_it_survives_postgresql_restarted_under_traffic(stack: Stack, accepted: list[str]) -> None:
    pids = stack.pids()
    with polling_live(stack.base) as live:
        traffic_during(stack, 0.5, accepted)
        stack.postgres.stop()
        try:
            ingest = traffic_during(stack, 2.0, accepted)
            assert_failing_in_time(ready(stack.base))
            # Nothing to store into: refused with a clear 503, not a 500.
            assert {a.status for a in ingest} <= {200, 503}, {a.status for a in ingest}
            assert max(a.seconds for a in ingest) < 1.0
        finally:
            stack.postgres.start()
        traffic_during(stack, 0.5, accepted)
        assert_recovered(stack, pids, accepted)
    assert_live_throughout(live.answers)


def test_an_unreachable_s3_endpoint_fails_storage_only(stack: Stack, accepted: list[str]) -> None:
    pids = stack.pids()
    with polling_live(stack.base) as live:
        storage = component(stack.base, "storage")
        assert_failing_in_time(storage)
        # Refused at once, or botocore's own retries outlast the check: either way, in time.
        output = storage.json()["output"]
        assert "backup storage failed" in output or "timed out" in output, output
        answer = ready(stack.base)
        assert answer.status == 200, answer.body[:300]  # backups are not readiness
        traffic_during(stack, 0.5, accepted)
        assert_recovered(stack, pids, accepted)
    assert_live_throughout(live.answers)


@pytest.mark.parametrize("broker", ["silent", "closed"])
def test_a_broker_that_never_answers_or_refuses_costs_ingest_under_a_second(
    stack: Stack, accepted: list[str], broker: str
) -> None:
    """`silent` accepts TCP and never answers; `closed` is a port nothing listens on."""
    silent = SilentServer()
    broker_port = silent.port if broker == "silent" else free_port()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(stack.env, CELERY_BROKER_URL=f"redis://127.0.0.1:{broker_port}/0")
    other = spawn(f"gunicorn-{broker}-broker", gunicorn_argv(port), env, stack.root)
    pids = stack.pids()
    try:
        wait_until(lambda: request(f"{base}/health/live").status == 200, 60, "gunicorn to start")
        with polling_live(base) as live:
            ingest = traffic_during(stack, 2.5, accepted, base)
            assert all(a.status == 200 for a in ingest), {a.status for a in ingest}
            seconds = [round(a.seconds, 2) for a in ingest]
            assert max(seconds) < 1.0, seconds
            # A failed kick backs off: one request per gunicorn worker pays the publish
            # timeout, not every request.
            assert len([s for s in seconds if s >= 0.3]) <= 2, seconds
            probe = ready(base)
            assert_failing_in_time(probe)
            assert "broker unreachable" in probe.body.decode()
        assert_live_throughout(live.answers)
        # The kicks were lost; beat's digest on the working broker collects the events.
        assert_recovered(stack, pids, accepted)
    finally:
        other.stop()
        silent.close()


def test_a_worker_process_killed_mid_task_is_replaced_and_the_task_rerun(
    stack: Stack, accepted: list[str]
) -> None:
    pids = stack.pids()
    marker = stack.root / "killed-nap.log"
    with polling_live(stack.base) as live:
        publish_nap(stack, 2.0, marker)
        first = wait_until(lambda: marker_lines(marker), 20, "the task to start")[0]
        child = int(first.split()[1])
        assert child != stack.worker.pid  # a pool process, not the worker itself
        os.kill(child, signal.SIGKILL)
        traffic_during(stack, 0.5, accepted)
        # acks_late + reject_on_worker_lost: the message goes back and a new process runs it.
        done = wait_until(
            lambda: [line for line in marker_lines(marker) if line.startswith("done")],
            30,
            "the task to run again to the end",
        )
        assert int(done[0].split()[1]) != child
        assert_recovered(stack, pids, accepted)
    assert_live_throughout(live.answers)


def test_a_wedged_worker_pool_fails_the_queue_check(stack: Stack, accepted: list[str]) -> None:
    pids = stack.pids()
    answer = component(stack.base, "queue")
    assert answer.status == 200, answer.body[:300]
    marker = stack.root / "wedge-nap.log"
    publish_nap(stack, QUEUE_MAX_WAIT + 5, marker)
    wait_until(lambda: marker_lines(marker), 20, "the task to occupy the only pool process")
    # The ingest's digest kick now waits behind it; the worker's heartbeat stays fresh.
    traffic_during(stack, 0.3, accepted)
    failing = wait_until(
        lambda: (a := component(stack.base, "queue")).status == 503 and a,
        QUEUE_MAX_WAIT + 4,
        "the queue check to fail",
    )
    body = failing.json()
    assert "take no work" in body["output"], body
    workers = body["checks"]["queue:workers"][0]["observedValue"]
    assert workers >= 1  # alive by heartbeat, yet not taking work
    assert failing.seconds < PROBE_BUDGET
    # Once the pool is free again, the waiting digest runs and the check passes.
    wait_until(lambda: component(stack.base, "queue").status == 200, 20, "the queue to drain")
    assert_recovered(stack, pids, accepted)


def test_closing_a_broker_connection_the_worker_already_collected_does_not_raise() -> None:
    """The state behind a worker that exited on a Redis restart (seen in the test above, a
    race): Celery collects the lost connection, detaching its transport, then closes it, and
    the close puts the unacknowledged messages back over the detached transport."""
    from kombu import Connection, Consumer, Producer, Queue

    scratch = scratch_dir()
    redis = PrivateRedis(scratch)
    redis.start()
    try:
        conn = Connection(redis.url)
        channel = conn.default_channel
        queue = Queue("probe", channel=channel)
        queue.declare()
        Producer(channel).publish({"n": 1}, routing_key="probe")
        received: list[Any] = []
        with Consumer(channel, [queue], callbacks=[lambda body, message: received.append(body)]):
            conn.drain_events(timeout=5)
        assert received and channel.qos._delivered  # type: ignore[attr-defined]  # held, not acknowledged
        conn._do_close_transport()  # what Connection.collect() leaves behind
        conn.close()  # raised AttributeError before opsconsole.brokerfix
    finally:
        redis.stop()
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.mark.parametrize("transport", ["redis", "filesystem"])
def test_the_oldest_waiting_message_is_judged_by_its_publish_time(transport: str) -> None:
    """Read without consuming, on both brokers the console runs on: the message published
    first counts, whatever came after it."""
    from opsconsole.celery import app

    scratch = scratch_dir()
    redis = PrivateRedis(scratch)
    if transport == "redis":
        redis.start()
        url, options = redis.url, {}
    else:
        folder = scratch / "broker"
        folder.mkdir()
        url = "filesystem://"
        options = {"data_folder_in": str(folder), "data_folder_out": str(folder)}
    try:
        with app.connection_for_write(url, transport_options=options) as conn:
            for age in (120, 30):  # the first published has waited two minutes
                app.send_task(
                    "errors.tasks.digest_inbox",
                    connection=conn,
                    queue="probe",
                    retry=False,
                    headers={"ops_published_at": time.time() - age},
                )
                time.sleep(0.01)  # filesystem message names order by the millisecond
            app.send_task("errors.tasks.digest_inbox", connection=conn, queue="probe", retry=False)
            waited = oldest_wait(conn.default_channel, "probe")
            assert queue_depth(conn.default_channel, "probe") == 3
        assert waited is not None and 119 < waited < 130, waited
    finally:
        redis.stop()
        shutil.rmtree(scratch, ignore_errors=True)
