"""Nothing accepted is lost: events accepted while no worker runs are digested when one starts."""

from __future__ import annotations

import time

import pytest

from errors.models import ErrorReport, InboxEvent, Issue
from tests.fixtures_errors import envelope_bytes, gz, make_event, post_envelope

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_events_accepted_while_the_worker_is_down_are_processed_when_it_returns(
    client, project, request
):
    proj, key = project
    events = [make_event() for _ in range(25)]
    for event in events:
        body = gz(envelope_bytes(event))
        assert post_envelope(client, proj.pk, body, key=key, encoding="gzip").status_code == 200
    assert InboxEvent.objects.count() == 25
    assert not ErrorReport.objects.exists()

    request.getfixturevalue("live_worker")  # the worker comes back
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and ErrorReport.objects.count() < 25:
        time.sleep(0.2)
    assert set(ErrorReport.objects.values_list("event_id", flat=True)) == {
        e["event_id"] for e in events
    }
    assert Issue.objects.get(project=proj).count == 25
    assert not InboxEvent.objects.exists()


@pytest.mark.postgres
def test_two_digest_workers_share_the_backlog_without_losing_or_doubling(project):
    import json
    import threading

    from django.db import connection

    from errors import services
    from errors.ingest import Envelope

    proj, _ = project
    events = []
    for i in range(300):
        event = make_event()
        event["exception"]["values"][0]["type"] = f"Error{i % 5}"
        events.append(event)
        services.enqueue(
            proj.pk,
            Envelope(headers={}, event=json.dumps(event).encode(), event_id=event["event_id"]),
            kick=False,
        )
    errors: list[BaseException] = []

    def work() -> None:
        try:
            from errors.digest import digest_batch

            while digest_batch(batch_size=25):
                pass
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert ErrorReport.objects.count() == 300
    assert sorted(Issue.objects.values_list("count", flat=True)) == [60] * 5
    assert not InboxEvent.objects.exists()
