"""Scheduled health runs: history, transitions, uptime, the command and the admin."""

from __future__ import annotations

import io
import json
import time
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from django.utils import timezone
from health_check.exceptions import ServiceUnavailable, ServiceWarning

from health import registry, services, signals
from health.checks import Cache, Disk, Memory, Queue, Storage
from health.models import ComponentResult, ComponentState, HealthCheck, WorkerHeartbeat
from health.runner import run_components
from opsconsole.models import SchedulerHeartbeat


@pytest.fixture
def caught() -> Any:
    events: dict[str, list[dict[str, Any]]] = {"failed": [], "recovered": [], "performed": []}

    def on_failed(sender: Any, **kw: Any) -> None:
        events["failed"].append(kw)

    def on_recovered(sender: Any, **kw: Any) -> None:
        events["recovered"].append(kw)

    def on_performed(sender: Any, **kw: Any) -> None:
        events["performed"].append(kw)

    signals.health_check_failed.connect(on_failed)
    signals.health_check_recovered.connect(on_recovered)
    signals.system_health_check_performed.connect(on_performed)
    yield events
    signals.health_check_failed.disconnect(on_failed)
    signals.health_check_recovered.disconnect(on_recovered)
    signals.system_health_check_performed.disconnect(on_performed)


@pytest.mark.django_db
def test_each_run_is_stored_with_its_status_details_and_duration(only_switch: Any) -> None:
    run = services.perform_health_check()
    assert HealthCheck.objects.count() == 1
    assert run.status == "pass"
    assert run.duration_ms > 0
    assert run.details["switch"]["status"] == "pass"
    assert ComponentResult.objects.get(run=run).component == "switch"


@pytest.mark.django_db
def test_transitions_send_each_signal_once(only_switch: Any, caught: Any) -> None:
    services.perform_health_check()
    only_switch["status"] = "fail"
    for _ in range(3):
        services.perform_health_check()
    only_switch["status"] = "warn"  # warn after fail is a recovery: the component serves again
    services.perform_health_check()
    only_switch["status"] = "pass"
    services.perform_health_check()
    assert len(caught["failed"]) == 1
    assert caught["failed"][0]["component"] == "switch"
    assert caught["failed"][0]["output"] == "switched off"
    assert len(caught["recovered"]) == 1
    assert caught["recovered"][0]["status"] == "warn"
    assert len(caught["performed"]) == 6
    assert ComponentState.objects.get(component="switch").status == "pass"


@pytest.mark.django_db
def test_a_component_failing_on_its_first_run_is_announced(only_switch: Any, caught: Any) -> None:
    only_switch["status"] = "fail"
    services.perform_health_check()
    assert len(caught["failed"]) == 1


@pytest.mark.django_db
def test_uptime_is_computed_from_the_history_with_unchecked_time_unknown(
    only_switch: Any, settings: Any
) -> None:
    settings.OPS_HEALTH_CHECK_INTERVAL = 60.0  # a run vouches for at most two intervals
    now = timezone.now()
    for minutes_ago, status in ((10, "pass"), (8, "fail"), (6, "pass")):
        only_switch["status"] = status
        run = services.perform_health_check()
        at = now - timedelta(minutes=minutes_ago)
        ComponentResult.objects.filter(run=run).update(created_at=at)
        HealthCheck.objects.filter(pk=run.pk).update(created_at=at)
    table = services.uptime(now)
    # Up 2 + 2 minutes, down 2: the 4 minutes since the last run, and all before, are unknown.
    assert table["switch"]["24h"] == pytest.approx(66.667, abs=0.01)
    assert table["switch"]["30d"] == pytest.approx(66.667, abs=0.01)


@pytest.mark.django_db
def test_cleanup_removes_runs_older_than_the_retention(only_switch: Any) -> None:
    keep = services.perform_health_check()
    old = services.perform_health_check()
    HealthCheck.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    ComponentResult.objects.filter(run=old).update(created_at=timezone.now() - timedelta(days=31))
    deleted = services.cleanup()
    assert deleted == {"health.ComponentResult": 1, "health.HealthCheck": 1}
    assert list(HealthCheck.objects.values_list("pk", flat=True)) == [keep.pk]


@pytest.mark.django_db
def test_the_command_exits_0_on_pass_and_warn_and_1_on_fail(only_switch: Any) -> None:
    out = io.StringIO()
    call_command("healthcheck", stdout=out)
    assert "health: pass" in out.getvalue()
    only_switch["status"] = "warn"
    call_command("healthcheck", stdout=io.StringIO())
    only_switch["status"] = "fail"
    with pytest.raises(SystemExit) as exit_info:
        call_command("healthcheck", stdout=io.StringIO())
    assert exit_info.value.code == 1


@pytest.mark.django_db
def test_the_command_prints_health_json_for_one_component(switch: Any) -> None:
    out = io.StringIO()
    call_command("healthcheck", "--json", "--component", "switch", stdout=out)
    body = json.loads(out.getvalue())
    assert body["status"] == "pass"
    assert list(body["checks"]) == ["switch:responseTime"]


def test_the_command_refuses_an_unknown_component_with_one_line() -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT, subprocess_env

    result = subprocess.run(
        [sys.executable, "manage.py", "healthcheck", "--component", "nope"],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "unknown component 'nope': choose one of ready, database" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.django_db
def test_the_cache_check_round_trips_and_detects_integrity() -> None:
    check = Cache()
    check.run()
    assert check.observations[0]["measurement"] == "responseTime"


@pytest.mark.django_db
def test_storage_check_writes_reads_and_deletes(tmp_path: Any) -> None:
    with override_settings(BACKUP_STORAGE_URL=f"file://{tmp_path}"):
        check = Storage()
        check.run()
    assert {o["measurement"] for o in check.observations} == {"responseTime", "freeSpace"}
    assert list((tmp_path / ".ops-health").iterdir()) == []


@pytest.mark.django_db
def test_storage_check_fails_on_an_unwritable_storage(tmp_path: Any) -> None:
    target = tmp_path / "ro"
    target.mkdir()
    (target / ".ops-health").write_text("a file where a directory should be")
    with override_settings(BACKUP_STORAGE_URL=f"file://{target}"):
        registry.register("storage", lambda: [Storage()])
        report = run_components(["storage"])
    assert report.status == "fail"
    assert "backup storage failed" in report.outcomes[0].output


def test_disk_and_memory_checks_warn_and_fail_at_their_thresholds(tmp_path: Any) -> None:

    Disk(path=str(tmp_path), warn_percent=101, fail_percent=101).run()
    with pytest.raises(ServiceWarning):
        Disk(path=str(tmp_path), warn_percent=0, fail_percent=101).run()
    with pytest.raises(ServiceUnavailable):
        Disk(path=str(tmp_path), warn_percent=0, fail_percent=0).run()
    with pytest.raises(ServiceWarning):
        Memory(warn_percent=0, fail_percent=101).run()
    with pytest.raises(ServiceUnavailable):
        Memory(warn_percent=0, fail_percent=0).run()


@pytest.fixture
def empty_queue() -> Any:
    """A queue of this test's own: kicks other tests left unconsumed on the shared broker would
    count as waiting tasks (the queue check fails when the oldest has waited too long)."""
    from opsconsole.celery import app
    from tests.conftest import route_digest_to

    old = app.conf.task_default_queue, app.conf.task_routes
    app.conf.task_default_queue = f"test-queue-check-{time.time_ns()}"
    route_digest_to(app, f"{app.conf.task_default_queue}-digest")
    yield app.conf.task_default_queue
    app.conf.task_default_queue = old[0]
    route_digest_to(app, old[1]["errors.tasks.digest_inbox"]["queue"])


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("empty_queue")
def test_queue_check_fails_without_a_live_worker_and_degrades_on_failed_tasks() -> None:
    from django_celery_results.models import TaskResult

    with pytest.raises(ServiceUnavailable, match="no Celery worker"):
        Queue().run()
    WorkerHeartbeat.objects.create(
        hostname="stale@x", last_seen=timezone.now() - timedelta(minutes=5)
    )
    with pytest.raises(ServiceUnavailable, match="no Celery worker"):
        Queue().run()
    WorkerHeartbeat.objects.create(hostname="w1@x", last_seen=timezone.now())
    Queue().run()
    for i in range(11):
        TaskResult.objects.create(task_id=f"t{i}", status="FAILURE", date_done=timezone.now())
    with pytest.raises(ServiceWarning, match="11 tasks failed in the last hour"):
        Queue().run()
    Queue(failed_threshold=20).run()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_keeps_the_queue_check_passing(live_worker: Any) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not WorkerHeartbeat.objects.exists():
        time.sleep(0.2)
    row = WorkerHeartbeat.objects.get()
    assert row.hostname == live_worker["hostname"]
    check = Queue()
    check.run()
    figures = {o["measurement"]: o["observedValue"] for o in check.observations}
    assert figures["workers"] == 1
    assert figures["depth"] == 0


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_every_check_is_healthy_in_a_working_setup(
    live_worker: Any, client: Client, tmp_path: Any
) -> None:
    from backups.services import create_backup

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not WorkerHeartbeat.objects.exists():
        time.sleep(0.2)
    with override_settings(BACKUP_STORAGE_URL=f"file://{tmp_path}", OPS_HEALTH_TOKEN="t" * 32):
        create_backup("db")  # a working setup has a recent backup
        # ... and a beat that just ticked (real beats: tests/test_scheduler_ha.py)
        now = timezone.now()
        SchedulerHeartbeat.objects.create(
            beat="beat@test:1", host="test", started_at=now, last_tick=now, shortest_interval=10
        )
        response = client.get("/health/", headers={"X-Health-Token": "t" * 32})
    body = json.loads(response.content)
    statuses = {key.split(":")[0]: v[0]["status"] for key, v in body["checks"].items()}
    assert response.status_code == 200, body.get("output")
    assert {
        "database",
        "cache",
        "redis",
        "queue",
        "storage",
        "external",
        "application",
        "disk",
        "memory",
        "backups",
        "scheduler",
    } <= set(statuses)
    assert set(statuses.values()) == {"pass"}, statuses
    assert body["checks"]["redis:usedMemory"][0]["observedUnit"] == "bytes"
    assert body["checks"]["redis:connectedClients"][0]["observedValue"] >= 1


@pytest.mark.django_db
def test_the_admin_shows_history_and_uptime_to_staff(
    client: Client, admin: Any, only_switch: Any
) -> None:
    services.perform_health_check()
    client.force_login(admin)
    page = client.get("/admin/health/healthcheck/")
    assert page.status_code == 200
    assert b'data-component="switch"' in page.content
    assert b"100.00 %" in page.content
    assert client.get("/admin/health/healthcheck/?status=fail").status_code == 200
    assert client.get("/admin/health/externalservice/add/").status_code == 200


@pytest.mark.django_db
def test_an_outsider_cannot_see_the_health_history(client: Client, outsider: Any) -> None:
    client.force_login(outsider)
    response = client.get("/admin/health/healthcheck/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_adding_an_external_service_in_the_admin_is_audited(client: Client, admin: Any) -> None:
    from opsconsole.models import SystemLog

    client.force_login(admin)
    response = client.post(
        "/admin/health/externalservice/add/",
        {
            "name": "payments",
            "url": "https://payments.example.com/health",
            "method": "GET",
            "expected_status": 200,
            "timeout_seconds": 2,
            "tls_warn_days": 14,
            "critical": "on",
            "enabled": "on",
        },
    )
    assert response.status_code == 302
    entry = SystemLog.objects.get(action="admin.add")
    assert entry.actor_name == "alice"
    assert "payments" in entry.target


@pytest.mark.django_db
def test_the_admin_refuses_a_timeout_longer_than_probes_allow(client: Client, admin: Any) -> None:
    client.force_login(admin)
    response = client.post(
        "/admin/health/externalservice/add/",
        {
            "name": "slow",
            "url": "https://slow.example.com/",
            "method": "GET",
            "expected_status": 700,
            "timeout_seconds": 60,
            "tls_warn_days": 14,
            "enabled": "on",
        },
    )
    assert response.status_code == 200
    assert b"Use 0.1 to 5 seconds" in response.content
    assert b"An HTTP status is between 100 and 599" in response.content


@pytest.mark.django_db
def test_the_console_home_shows_status_at_a_glance(
    client: Client, admin: Any, only_switch: Any
) -> None:
    client.force_login(admin)
    assert b"No scheduled health check has run yet" in client.get("/admin/").content
    only_switch["status"] = "fail"
    services.perform_health_check()
    page = client.get("/admin/")
    assert page.status_code == 200
    assert b'id="ops-overall">fail<' in page.content
    assert b'data-component="switch"' in page.content
    assert b"switched off" in page.content


def queue_tasks(queue: str, count: int, waited: float = 0.0) -> None:
    """`count` task messages on `queue`, published `waited` seconds ago (nobody consumes them)."""
    from opsconsole.celery import app

    for _ in range(count):
        app.send_task(
            "health.tests.never_run",
            queue=queue,
            headers={"ops_published_at": time.time() - waited},
        )


@pytest.mark.django_db(transaction=True)
def test_each_queue_is_judged_by_its_depth_and_its_oldest_wait(empty_queue: str) -> None:
    from health.checks import QueueLimits

    WorkerHeartbeat.objects.create(hostname="w1@x", last_seen=timezone.now())
    queue_tasks(empty_queue, 1, waited=90)  # the oldest first, as a queue fills
    queue_tasks(empty_queue, 3)
    loose = QueueLimits(wait_warn=0, wait_fail=0, depth_warn=0, depth_fail=0)
    check = Queue(limits=loose)
    check.run()
    figures = {o["measurement"]: o["observedValue"] for o in check.observations}
    assert figures[f"{empty_queue}:depth"] == 4
    assert 89 <= figures[f"{empty_queue}:oldestWait"] <= 100
    with pytest.raises(ServiceWarning, match=f"queue {empty_queue}: 4 tasks waiting"):
        Queue(limits=QueueLimits(wait_warn=0, wait_fail=0, depth_warn=4, depth_fail=0)).run()
    with pytest.raises(ServiceUnavailable, match="4 tasks waiting \\(fail at 4\\)"):
        Queue(limits=QueueLimits(wait_warn=0, wait_fail=0, depth_warn=2, depth_fail=4)).run()
    with pytest.raises(ServiceWarning, match="oldest waiting task has waited 9\\d s \\(warn at 60"):
        Queue(limits=QueueLimits(wait_warn=60, wait_fail=300, depth_warn=0, depth_fail=0)).run()
    with pytest.raises(ServiceUnavailable, match="waited 9\\d s \\(fail at 80 s\\): workers"):
        Queue(limits=QueueLimits(wait_warn=60, wait_fail=80, depth_warn=2, depth_fail=0)).run()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("empty_queue")
def test_one_dead_worker_among_several_is_named_when_workers_are_expected() -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.create(hostname="w1@a", last_seen=now)
    WorkerHeartbeat.objects.create(hostname="w2@b", last_seen=now - timedelta(minutes=5))
    Queue().run()  # no expectation set: one live worker is enough
    with pytest.raises(ServiceWarning, match="1 of 2 expected workers alive \\(silent: w2@b\\)"):
        Queue(expected_workers=2).run()
