"""Nothing accepted is lost: events accepted while no worker runs are digested when one starts."""

from __future__ import annotations

import time

import pytest

from errors.models import ErrorReport, InboxEvent, Issue
from tests.fixtures_errors import envelope_bytes, gz, make_event, post_envelope, project_fixture  # noqa: F401

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
