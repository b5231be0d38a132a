"""Queues and tasks: failures and runtimes recorded from Celery's signals, the figures the page
shows, retry and discard with their permission and audit trail, bad input and retention."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from metrics.histogram import SLOTS, bucket_index, quantile
from opsconsole.models import SystemLog
from queues import recording, services, stats
from queues.models import TaskFailure, TaskHour, TaskMinute
from tests.queues_support import TASK_NAME, fails_until_marker

CHANGELIST = "admin:queues_taskfailure_changelist"
OVERVIEW = "admin:queues-overview"
LIVE = "admin:queues-overview-live"


@pytest.fixture
def retrier(db: Any) -> User:
    """Staff who may view everything and retry tasks (the operator role's rights here)."""
    user = User.objects.create_user("dora", "dora@example.com", "dora-password", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__startswith="view_")
        | Permission.objects.filter(codename="retry_task", content_type__app_label="queues")
    )
    return user


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _failure(**fields: Any) -> TaskFailure:
    values: dict[str, Any] = {
        "task_id": str(uuid.uuid4()),
        "task_name": TASK_NAME,
        "failed_at": timezone.now(),
        "raw_arguments": json.dumps({"args": ["/nowhere"], "kwargs": {"api_token": "t0k"}}),
        "args": ["/nowhere"],
        "kwargs": {"api_token": "[Filtered]"},
    }
    values.update(fields)
    return TaskFailure.objects.create(**values)


# --- recording ----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_it_records_a_failed_task_from_celerys_signal_with_scrubbed_arguments(
    tmp_path: Path,
) -> None:
    marker = str(tmp_path / "absent")
    recording.minutes.take()  # runs that earlier tests in this process left buffered
    fails_until_marker.apply(args=(marker,), kwargs={"api_token": "tok-9f8e7d6c5b4a"})
    [(_, name)] = recording.minutes.take()  # its run, buffered for the minute's row
    assert name == TASK_NAME

    failure = TaskFailure.objects.get()
    assert failure.task_name == TASK_NAME
    assert failure.state == TaskFailure.State.FAILED
    assert failure.exception_type == "RuntimeError"
    assert "marker absent is missing" in failure.exception_message
    assert "RuntimeError" in failure.traceback and "fails_until_marker" in failure.traceback
    assert failure.args == [marker]
    assert failure.kwargs == {"api_token": "[Filtered]"}
    assert failure.arguments_changed is True
    # Kept apart, whole, only for a retry.
    assert json.loads(failure.raw_arguments)["kwargs"] == {"api_token": "tok-9f8e7d6c5b4a"}
    assert failure.retriable


@pytest.mark.django_db
def test_it_scrubs_secrets_inside_positional_arguments_and_messages() -> None:
    url = "postgres://app:hunter2-secret@db.internal/app"
    fields = recording.capture_arguments([url, {"password": "pw-1", "n": 3}], {})
    assert "hunter2-secret" not in json.dumps(fields["args"])
    assert fields["args"][1] == {"password": "[Filtered]", "n": 3}
    assert fields["arguments_changed"] is True

    plain = recording.capture_arguments([1, "two"], {"three": 3.0})
    assert plain["args"] == [1, "two"] and plain["kwargs"] == {"three": 3.0}
    assert plain["arguments_changed"] is False


@pytest.mark.django_db
def test_it_caps_large_arguments_and_will_not_retry_what_it_could_not_keep_whole(
    admin: User,
) -> None:
    huge = "x" * (recording.MAX_RAW_ARGUMENTS + 10)
    fields = recording.capture_arguments([huge], {})
    assert fields["raw_arguments"] == ""
    assert fields["arguments_changed"] is True
    assert len(json.dumps(fields["args"])) <= recording.MAX_SHOWN_ARGUMENTS
    not_json = recording.capture_arguments([object()], {})
    assert not_json["raw_arguments"] == "" and "object object" in not_json["args"][0]

    failure = _failure(**fields)
    outcome = services.retry(failure.pk, actor=admin)
    assert outcome.ok is False
    assert "could not be kept whole" in outcome.message
    failure.refresh_from_db()
    assert failure.state == TaskFailure.State.FAILED
    log = SystemLog.objects.get(action="queues.retry_task")
    assert log.result == "failure"


# --- per-task figures ---------------------------------------------------------------------------
@pytest.mark.django_db
def test_it_adds_runs_per_minute_into_one_row_per_task_and_minute_across_processes() -> None:
    minute = datetime(2026, 1, 5, 10, 0, tzinfo=UTC).timestamp()
    runtimes = [0.004] * 50 + [0.04] * 40 + [0.9] * 10
    buffers = [recording.MinuteBuffer(), recording.MinuteBuffer()]  # two pool processes
    for buffer in buffers:  # no flush thread outside a worker: flushed by hand below
        for i, runtime in enumerate(runtimes):
            buffer.add("app.tasks.job", runtime, failed=i % 25 == 0, now=minute + 5)
        buffer.add("app.tasks.job", 0.01, failed=False, now=minute + 65)  # the next minute
        recording.write_minutes(buffer.take(before=int(minute) + 60))

    row = TaskMinute.objects.get()
    assert row.minute == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    assert row.count == 200 and row.failures == 8
    assert row.runtime_sum == pytest.approx(2 * sum(runtimes))
    expected = [0] * SLOTS
    for runtime in runtimes:
        expected[bucket_index(runtime)] += 2
    assert row.histogram == expected
    assert TaskHour.objects.get().count == 200
    # The next minute stays buffered until that minute is over.
    assert list(buffers[0].take()) == [(int(minute) + 60, "app.tasks.job")]


@pytest.mark.django_db
def test_it_reports_throughput_percentiles_and_failure_rate_over_the_period() -> None:
    now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    histogram = [0] * SLOTS
    histogram[bucket_index(0.004)] = 60
    histogram[bucket_index(0.3)] = 40
    start = int(now.timestamp())
    recording.write_minutes(
        {
            (start - 5 * 60, "app.tasks.job"): [100, 3, 12.24, histogram],
            (start - 30 * 60, "app.tasks.job"): [100, 3, 12.24, histogram],
            (start - 2 * 3600, "app.tasks.job"): [7, 7, 1.0, [7] + [0] * (SLOTS - 1)],
        }
    )
    assert TaskMinute.objects.count() == 3
    assert sorted(TaskHour.objects.values_list("count", flat=True)) == [7, 200]

    [hour] = stats.task_stats("1h", now)
    assert (hour.runs, hour.failures) == (200, 6)
    assert hour.per_minute == pytest.approx(200 / 60)
    assert hour.failure_rate == pytest.approx(0.03)
    summed = [v * 2 for v in histogram]
    assert hour.p50_ms == pytest.approx(quantile(0.5, summed) * 1000)  # type: ignore[operator]
    assert hour.p95_ms == pytest.approx(quantile(0.95, summed) * 1000)  # type: ignore[operator]
    assert 2.5 <= hour.p50_ms <= 5 and 250 <= hour.p95_ms <= 300  # type: ignore[operator]
    assert hour.mean_ms == pytest.approx(24.48 / 200 * 1000)

    [day] = stats.task_stats("24h", now)  # from the hour rows
    assert (day.runs, day.failures) == (207, 13)
    assert day.per_minute == pytest.approx(207 / 1440)
    assert day.p95_ms == pytest.approx(hour.p95_ms, rel=0.05)
    # Mid-hour, the period starts at the top of the hour it begins in: the rate divides by
    # the minutes actually covered.
    [later] = stats.task_stats("24h", now + timedelta(minutes=30))
    assert later.runs == 207 and later.per_minute == pytest.approx(207 / (1440 + 30))
    assert stats.task_stats("1h", now - timedelta(days=30)) == []


def test_it_refuses_a_period_it_does_not_know() -> None:
    assert stats.parse_period(None) == "1h"
    assert stats.parse_period("7d") == "7d"
    for bad in ("2h", "1H", "x" * 500, "24h;drop"):
        with pytest.raises(stats.BadPeriod):
            stats.parse_period(bad)


# --- the page -------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_page_shows_figures_and_failures_and_answers_a_bad_period_with_400(
    retrier: User,
) -> None:
    minute = int(timezone.now().timestamp()) // 60 * 60 - 180
    recording.write_minutes(
        {(minute, "app.tasks.report"): [12, 3, 1.2, [0] * 5 + [12] + [0] * (SLOTS - 6)]}
    )
    _failure(exception_type="ValueError", exception_message="bad row 7")
    client = _client(retrier)

    page = client.get(reverse(OVERVIEW))
    assert page.status_code == 200
    html = page.content.decode()
    assert "app.tasks.report" in html and "25.0 %" in html  # failure rate 3/12
    assert "ValueError" in html and "bad row 7" in html
    assert "[Filtered]" in html and "t0k" not in html
    assert 'data-live-url="/admin/queues/taskfailure/overview/live/?period=1h"' in html
    assert ">Retry</button>" in html

    fragment = client.get(reverse(LIVE), {"period": "24h"})
    assert fragment.status_code == 200 and "app.tasks.report" in fragment.content.decode()
    assert "<html" not in fragment.content.decode()
    for url in (reverse(OVERVIEW), reverse(LIVE)):
        bad = client.get(url, {"period": "3w"})
        assert bad.status_code == 400 and "unknown period" in bad.content.decode()


@pytest.mark.django_db
def test_workers_show_their_heartbeat_age_and_the_answers_are_cached_briefly(
    retrier: User,
) -> None:
    from django.core.cache import cache

    from health.models import WorkerHeartbeat
    from queues import live

    cache.delete(live.CACHE_KEY)
    now = timezone.now()
    WorkerHeartbeat.objects.create(hostname="celery@gone", last_seen=now - timedelta(minutes=10))
    first = live.current(now)
    [worker] = first.workers
    assert worker.hostname == "celery@gone" and worker.heartbeat_age == pytest.approx(600)
    assert worker.replied is False and worker.concurrency is None  # no worker answers here
    WorkerHeartbeat.objects.create(hostname="celery@new", last_seen=now)
    assert live.current(now).measured_at == first.measured_at  # cached
    assert len(live.current(now, fresh=True).workers) == 2

    html = _client(retrier).get(reverse(LIVE)).content.decode()
    assert "celery@gone" in html and "silent" in html and "10 min 0 s ago" in html
    cache.delete(live.CACHE_KEY)


@pytest.mark.django_db
def test_the_failure_shows_its_scrubbed_arguments_and_traceback_but_never_the_raw_ones(
    operator: User,
) -> None:
    failure = _failure(traceback="Traceback (most recent call last):\n  boom")
    html = _client(operator).get(reverse("admin:queues_taskfailure_change", args=[failure.pk]))
    assert html.status_code == 200
    body = html.content.decode()
    assert "Traceback (most recent call last)" in body and "[Filtered]" in body
    assert "t0k" not in body and "raw_arguments" not in body
    assert "Retry this task" not in body  # a viewer is offered no operation


@pytest.mark.django_db
def test_the_page_and_fragment_need_a_staff_login(outsider: User) -> None:
    for url in (reverse(OVERVIEW), reverse(LIVE)):
        assert Client().get(url).status_code == 302
        assert _client(outsider).get(url).status_code == 302


# --- operations -----------------------------------------------------------------------------------
def _post_action(client: Client, action: str, *failures: TaskFailure, **extra: str) -> Any:
    data = {"action": action, "index": "0", "_selected_action": [f.pk for f in failures]}
    return client.post(reverse(CHANGELIST), {**data, **extra})


@pytest.mark.django_db
def test_a_viewer_cannot_retry_or_discard_and_the_attempt_is_audited(operator: User) -> None:
    failure = _failure()
    client = _client(operator)
    for action in ("retry_selected", "discard_selected"):
        response = _post_action(client, action, failure, post="yes")
        assert response.status_code == 403
        denied = SystemLog.objects.filter(result="denied", details__action=action)
        assert denied.count() == 1 and denied.get().actor == operator
    failure.refresh_from_db()
    assert failure.state == TaskFailure.State.FAILED and failure.raw_arguments


@pytest.mark.django_db
def test_retrying_the_selected_asks_for_confirmation_first(retrier: User) -> None:
    ok, whole_lost = _failure(), _failure(raw_arguments="")
    response = _post_action(_client(retrier), "retry_selected", ok, whole_lost)
    assert response.status_code == 200
    body = response.content.decode()
    assert "1 of 2 selected tasks will be sent again" in body
    assert "could not be kept whole" in body and 'name="post" value="yes"' in body
    assert TaskFailure.objects.filter(state=TaskFailure.State.FAILED).count() == 2
    assert not SystemLog.objects.exclude(action__startswith="auth.").exists()  # nothing ran


@pytest.mark.django_db
def test_a_retry_sends_the_original_arguments_to_the_original_queue_once(
    retrier: User, settings: Any
) -> None:
    from opsconsole.celery import app

    queue = f"test-queues-{uuid.uuid4().hex[:8]}"
    failure = _failure(queue=queue)
    sent: list[Any] = []
    with app.connection_for_write() as conn:
        simple = conn.SimpleQueue(queue)
        try:
            overview = reverse(OVERVIEW) + "?period=24h"
            response = _post_action(
                _client(retrier), "retry_selected", failure, post="yes", next=overview
            )
            assert response.status_code == 302 and response["Location"] == overview
            message = simple.get(timeout=5)
            sent.append(message.payload)
            message.ack()
            again = _post_action(_client(retrier), "retry_selected", failure, post="yes")
            assert again.status_code == 302
            with pytest.raises(simple.Empty):
                simple.get(timeout=0.5)
        finally:
            simple.queue.delete()
            simple.close()
    args, kwargs, _ = sent[0]
    assert args == ["/nowhere"] and kwargs == {"api_token": "t0k"}  # not "[Filtered]"
    failure.refresh_from_db()
    assert failure.state == TaskFailure.State.RETRIED
    assert failure.retried_as and failure.raw_arguments == ""
    assert failure.handled_by == "dora"
    logs = SystemLog.objects.filter(action="queues.retry_task").order_by("pk")
    assert [log.result for log in logs] == ["success", "failure"]
    assert logs[0].details["retried_as"] == failure.retried_as
    runs = SystemLog.objects.filter(action="admin.action", details__action="retry_selected")
    assert runs.count() == 2 and runs.first().details["objects"] == [str(failure.pk)]  # type: ignore[union-attr]


@pytest.mark.django_db
def test_discarding_deletes_the_kept_arguments_and_is_audited(retrier: User) -> None:
    failure = _failure()
    response = _post_action(
        _client(retrier), "discard_selected", failure, next="https://elsewhere.example/admin/"
    )
    assert response.status_code == 302
    assert response["Location"] == reverse(CHANGELIST)  # never back to another site
    failure.refresh_from_db()
    assert failure.state == TaskFailure.State.DISCARDED and failure.raw_arguments == ""
    assert services.retry(failure.pk, actor=retrier).ok is False
    assert SystemLog.objects.get(action="queues.discard_task").result == "success"


@pytest.mark.django_db
def test_retention_deletes_old_failures_and_minutes_from_the_daily_upkeep() -> None:
    from maintenance.steps import cleanup_functions

    now = timezone.now()
    old = now - timedelta(days=31)
    _failure(failed_at=old)
    keep = _failure()
    TaskMinute.objects.create(minute=old, task_name="t", histogram=[])
    TaskMinute.objects.create(minute=now, task_name="t", histogram=[])
    TaskHour.objects.create(hour=old, task_name="t", histogram=[])
    TaskHour.objects.create(hour=now, task_name="t", histogram=[])

    assert cleanup_functions()["queues"] is services.cleanup
    assert services.cleanup(now=now) == {"TaskFailure": 1, "TaskMinute": 1, "TaskHour": 1}
    assert list(TaskFailure.objects.all()) == [keep]
    assert TaskMinute.objects.count() == 1 and TaskHour.objects.count() == 1
