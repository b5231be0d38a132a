"""Quotas per project: events and bytes per minute, bytes per day, new issues per hour; the
counters behind them are exact under concurrency, in Redis and in PostgreSQL alike."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from alerts.models import Alert
from errors import ratelimit, services, views
from errors.models import ErrorReport, InboxEvent, Issue, QuotaCounter
from errors.quotas import OVERFLOW_FINGERPRINT
from tests.fixtures_errors import envelope_bytes, make_event, post_envelope


def event_of_size(size: int) -> dict[str, Any]:
    event = make_event()
    event["extra"] = {"pad": "x" * (size - len(json.dumps(event)) - 20)}
    return event


def post(client: Any, proj: Any, key: Any, event: dict[str, Any]) -> Any:
    return post_envelope(client, proj.pk, envelope_bytes(event), key=key)


# --- ingest quotas ---------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("store", ["database", "redis"])
def test_it_refuses_events_beyond_the_bytes_per_minute_quota(client, project, store, request):
    redis_url = request.getfixturevalue("redis_url") if store == "redis" else ""
    proj, key = project
    proj.bytes_per_minute = 31_000
    proj.save()
    with override_settings(REDIS_URL=redis_url):
        statuses = [post(client, proj, key, event_of_size(10_000)) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    refused = statuses[-1]
    retry = int(refused["Retry-After"])
    assert 1 <= retry <= 61
    assert refused["X-Sentry-Rate-Limits"] == f"{retry}:error;default:project:bytes_rate_limit"
    assert "31000 event bytes per minute" in refused.json()["detail"]
    assert InboxEvent.objects.count() == 3


@pytest.mark.django_db
def test_it_refuses_events_beyond_the_bytes_per_day_quota_until_the_next_day(client, project):
    proj, key = project
    proj.bytes_per_day = 25_000
    proj.save()
    day = timezone.now().replace(hour=23, minute=0, second=0, microsecond=0)
    with time_machine.travel(day, tick=False), override_settings(REDIS_URL=""):
        assert post(client, proj, key, event_of_size(10_000)).status_code == 200
        assert post(client, proj, key, event_of_size(10_000)).status_code == 200
        refused = post(client, proj, key, event_of_size(10_000))
        assert refused.status_code == 429
        assert refused["Retry-After"] == str(3600 + 1)
        assert refused["X-Sentry-Rate-Limits"].endswith(":project:usage_exceeded")
    with time_machine.travel(day + timedelta(hours=1), tick=False), override_settings(REDIS_URL=""):
        assert post(client, proj, key, event_of_size(10_000)).status_code == 200


@pytest.mark.django_db
def test_a_refused_event_uses_up_no_quota(client, project):
    proj, key = project
    proj.bytes_per_minute = 15_000
    proj.save()
    with override_settings(REDIS_URL=""):
        assert post(client, proj, key, event_of_size(10_000)).status_code == 200
        assert post(client, proj, key, event_of_size(10_000)).status_code == 429
    # The refused 10 KB were not counted.
    counter = QuotaCounter.objects.get(key__contains=":bytes_per_minute:")
    assert counter.value < 15_000 - 4_000


@pytest.mark.django_db
def test_once_refused_a_project_is_refused_before_its_bodies_are_read(client, project):
    """A client that ignores Retry-After costs a header lookup per request until the window
    reopens: the body is not read (garbage gets the 429, not a 400). Changing the quota lifts
    the remembered refusal at once."""
    proj, key = project
    proj.rate_limit_per_minute = 1
    proj.save()
    minute = timezone.now().replace(second=5, microsecond=0)
    with time_machine.travel(minute, tick=False), override_settings(REDIS_URL=""):
        assert post(client, proj, key, make_event()).status_code == 200
        assert post(client, proj, key, make_event()).status_code == 429
        garbage = post_envelope(client, proj.pk, b"\xff" * 100_000, key=key)
        assert garbage.status_code == 429
        assert garbage["Retry-After"] == "56"
        assert InboxEvent.objects.count() == 1
        assert post(client, proj, key, make_event()).status_code == 429  # still this minute
    later = minute + timedelta(minutes=1)
    with time_machine.travel(later, tick=False), override_settings(REDIS_URL=""):
        assert post(client, proj, key, make_event()).status_code == 200
        assert post(client, proj, key, make_event()).status_code == 429
        proj.rate_limit_per_minute = 5
        proj.save()
        views._KEYS.clear()  # the project is read again (the key cache lasts 10 s)
        assert post(client, proj, key, make_event()).status_code == 200


@pytest.mark.django_db
def test_expired_quota_counters_are_removed_by_cleanup(client, project):
    proj, key = project
    with override_settings(REDIS_URL=""):
        assert post(client, proj, key, make_event()).status_code == 200
    assert QuotaCounter.objects.count() == 3  # events/min, bytes/min, bytes/day
    with time_machine.travel(timezone.now() + timedelta(days=2)):
        assert services.cleanup()["QuotaCounter"] == 3
    assert not QuotaCounter.objects.exists()


# --- atomic counters -------------------------------------------------------------------------
def hammer(limit: int, threads: int = 8, calls: int = 40) -> int:
    """Call the ingest rate limit from `threads` threads at once; return how many passed."""
    passed: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def work() -> None:
        try:
            barrier.wait()
            passed.append(sum(1 for _ in range(calls) if ratelimit.check(4242, limit) == 0))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert errors == []
    return sum(passed)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_database_counter_is_exact_under_concurrent_requests():
    # Without Redis the counters are PostgreSQL rows; 8 threads x 40 events race for 100.
    with override_settings(REDIS_URL=""):
        assert hammer(limit=100) == 100
    (counter,) = QuotaCounter.objects.filter(key__contains=":events_per_minute:")
    assert counter.value == 100


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_redis_counter_is_exact_under_concurrent_requests(redis_url):
    with override_settings(REDIS_URL=redis_url, OPS_REDIS_KEY_PREFIX=f"q-{uuid.uuid4().hex}"):
        assert hammer(limit=100) == 100


# --- new-issue budget ------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.django_db
def test_ten_thousand_invented_fingerprints_make_a_bounded_number_of_issues_and_alerts(
    project,
):
    proj, _ = project
    proj.new_issues_per_hour = 50
    proj.save()
    rows = []
    for n in range(10_000):
        event = make_event(fingerprint=[f"invented-{n}"])
        rows.append(
            InboxEvent(
                project=proj,
                event_id=event["event_id"],
                payload=json.dumps(event).encode(),
                last_error="",
            )
        )
    InboxEvent.objects.bulk_create(rows, batch_size=2000)

    assert services.digest() == 10_000

    assert ErrorReport.objects.count() == 10_000  # every event is kept
    assert Issue.objects.filter(project=proj).count() == 51
    overflow = Issue.objects.get(project=proj, fingerprint=OVERFLOW_FINGERPRINT)
    assert overflow.count == 10_000 - 50
    assert overflow.title == "Events beyond the budget of 50 new issues per hour"
    assert Alert.objects.filter(key__startswith="errors:issue:").count() <= 51
    # Known fingerprints keep their own issue beyond the budget.
    again = make_event(fingerprint=["invented-7"])
    InboxEvent.objects.create(
        project=proj, event_id=again["event_id"], payload=json.dumps(again).encode()
    )
    services.digest()
    assert ErrorReport.objects.get(event_id=again["event_id"]).issue.count == 2


@pytest.mark.django_db
def test_the_new_issue_budget_refills_after_an_hour(project):
    proj, _ = project
    proj.new_issues_per_hour = 2
    proj.save()

    def send(name: str) -> Issue:
        event = make_event(fingerprint=[name])
        InboxEvent.objects.create(
            project=proj, event_id=event["event_id"], payload=json.dumps(event).encode()
        )
        services.digest()
        return ErrorReport.objects.get(event_id=event["event_id"]).issue

    start = timezone.now()
    assert send("a").fingerprint != OVERFLOW_FINGERPRINT
    assert send("b").fingerprint != OVERFLOW_FINGERPRINT
    assert send("c").fingerprint == OVERFLOW_FINGERPRINT
    with time_machine.travel(start + timedelta(minutes=61)):
        assert send("d").fingerprint != OVERFLOW_FINGERPRINT


@pytest.mark.django_db
def test_zero_means_no_new_issue_budget(project):
    proj, _ = project
    proj.new_issues_per_hour = 0
    proj.save()
    for n in range(30):
        event = make_event(fingerprint=[f"n{n}"])
        InboxEvent.objects.create(
            project=proj, event_id=event["event_id"], payload=json.dumps(event).encode()
        )
    services.digest()
    assert Issue.objects.filter(project=proj).count() == 30
