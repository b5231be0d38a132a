"""Grouping, issue lifecycle (regression, ignore) and severity, through the digest."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from errors import grouping, services
from errors.ingest import Envelope
from errors.models import ErrorReport, Issue, SeverityRule
from tests.fixtures_errors import make_event

pytestmark = pytest.mark.django_db


def ingest(project_id: int, event: dict[str, Any]) -> Issue:
    services.enqueue(
        project_id,
        Envelope(headers={}, event=json.dumps(event).encode(), event_id=event["event_id"]),
    )
    services.digest()
    return ErrorReport.objects.get(event_id=event["event_id"]).issue


def exception_event(type_: str, value: str, function: str = "pay", **extra: Any) -> dict[str, Any]:
    event = make_event(**extra)
    exc = event["exception"]["values"][0]
    exc["type"], exc["value"] = type_, value
    exc["stacktrace"]["frames"][0]["function"] = function
    return event


def test_it_groups_by_exception_type_and_in_app_frames(project):
    proj, _ = project
    a = ingest(proj.pk, exception_event("ValueError", "invoice 1 bad"))
    b = ingest(proj.pk, exception_event("ValueError", "totally different text"))
    c = ingest(proj.pk, exception_event("ValueError", "invoice 1 bad", function="refund"))
    d = ingest(proj.pk, exception_event("KeyError", "invoice 1 bad"))
    assert a == b
    assert len({a.pk, c.pk, d.pk}) == 3
    assert Issue.objects.get(pk=a.pk).count == 2


def test_it_normalizes_numbers_ids_uuids_hex_and_ips_in_messages():
    a = "user 42 from 10.0.0.7 failed job 0xdeadbeef (req 4f3c2a1b-1111-2222-3333-444455556666)"
    b = "user 7 from 192.168.1.20 failed job 0x1234 (req 9a3c2a1b-aaaa-bbbb-cccc-444455556666)"
    assert grouping.normalize(a) == grouping.normalize(b)
    assert grouping.normalize("sha 3f2a9c8e7d6b5a41 missing") == "sha <hex> missing"


def test_messages_differing_only_by_variable_parts_group_together(project):
    proj, _ = project
    first = make_event(exception=None, message="timeout after 30s talking to 10.1.2.3")
    second = make_event(exception=None, message="timeout after 12s talking to 10.9.9.9")
    assert ingest(proj.pk, first) == ingest(proj.pk, second)


def test_without_in_app_frames_the_normalized_value_groups(project):
    proj, _ = project
    one = exception_event("OSError", "port 5432 refused")
    two = exception_event("OSError", "port 6379 refused")
    for e in (one, two):
        e["exception"]["values"][0]["stacktrace"]["frames"][0]["in_app"] = False
    assert ingest(proj.pk, one) == ingest(proj.pk, two)


def test_the_client_fingerprint_wins_and_default_expands(project):
    proj, _ = project
    a = ingest(proj.pk, exception_event("ValueError", "x", fingerprint=["gateway"]))
    b = ingest(proj.pk, exception_event("KeyError", "y", fingerprint=["gateway"]))
    plain = ingest(proj.pk, exception_event("ValueError", "x"))
    extended = ingest(
        proj.pk, exception_event("ValueError", "x", fingerprint=["{{ default }}", "eu"])
    )
    assert a == b
    assert plain != extended != a


def test_the_grouping_key_is_versioned(project, monkeypatch):
    proj, _ = project
    first = ingest(proj.pk, exception_event("ValueError", "x"))
    assert first.grouping_version == grouping.GROUPING_VERSION
    monkeypatch.setattr(grouping, "GROUPING_VERSION", grouping.GROUPING_VERSION + 1)
    second = ingest(proj.pk, exception_event("ValueError", "x"))
    assert second != first
    assert second.grouping_version == first.grouping_version + 1


def test_a_new_event_on_a_resolved_issue_reopens_it_as_a_regression(project):
    proj, _ = project
    issue = ingest(proj.pk, exception_event("ValueError", "x"))
    services.resolve_issue(issue)
    again = ingest(proj.pk, exception_event("ValueError", "x"))
    again.refresh_from_db()
    assert again.pk == issue.pk
    assert again.status == Issue.Status.UNRESOLVED
    assert again.regressed_at is not None


def test_an_ignored_issue_stays_ignored_until_its_time(project):
    proj, _ = project
    issue = ingest(proj.pk, exception_event("ValueError", "x"))
    services.ignore_issue(issue, until=timezone.now() + timedelta(hours=1))
    ingest(proj.pk, exception_event("ValueError", "x"))
    issue.refresh_from_db()
    assert issue.status == Issue.Status.IGNORED
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        ingest(proj.pk, exception_event("ValueError", "x"))
    issue.refresh_from_db()
    assert issue.status == Issue.Status.UNRESOLVED


def test_an_ignored_issue_reopens_after_n_more_events(project):
    proj, _ = project
    issue = ingest(proj.pk, exception_event("ValueError", "x"))
    services.ignore_issue(issue, until_more_events=2)
    ingest(proj.pk, exception_event("ValueError", "x"))
    issue.refresh_from_db()
    assert issue.status == Issue.Status.IGNORED
    ingest(proj.pk, exception_event("ValueError", "x"))
    issue.refresh_from_db()
    assert issue.status == Issue.Status.UNRESOLVED


@pytest.mark.parametrize(
    "type_,module,level,severity",
    [
        ("OperationalError", "django.db.utils", "error", "critical"),
        ("HTTPError", "urllib.error", "error", "critical"),
        ("ValidationError", "django.core.exceptions", "error", "warning"),
        ("PermissionDenied", "django.core.exceptions", "error", "warning"),
        ("ValueError", None, "error", "error"),
        ("ValueError", None, "fatal", "critical"),
    ],
)
def test_severity_follows_the_rules_and_the_level(project, type_, module, level, severity):
    proj, _ = project
    event = exception_event(type_, "boom", level=level)
    event["exception"]["values"][0]["module"] = module
    issue = ingest(proj.pk, event)
    assert issue.severity == severity


def test_severity_rules_are_editable(project):
    proj, _ = project
    SeverityRule.objects.create(pattern="billing.*", severity="critical", position=1)
    event = exception_event("ChargeFailed", "boom")
    event["exception"]["values"][0]["module"] = "billing.gateway"
    assert ingest(proj.pk, event).severity == "critical"


def test_message_events_take_their_level(project):
    proj, _ = project
    event = make_event(exception=None, message="cache warm", level="info")
    assert ingest(proj.pk, event).severity == "info"


def test_an_undigestible_event_is_set_aside_without_blocking_the_rest(project):
    from errors.models import InboxEvent

    proj, _ = project
    InboxEvent.objects.create(project=proj, event_id="a" * 32, payload=b"[1, 2]")
    good = exception_event("ValueError", "fine")
    ingest(proj.pk, good)
    # Kept for a retry (then quarantine, tests/test_errors_digest_poison.py), with the reason.
    bad = InboxEvent.objects.get()
    assert (bad.attempts, bad.last_error) == (1, "ValueError: event is not a JSON object")
    assert ErrorReport.objects.count() == 1


def test_nul_characters_do_not_wedge_the_queue(project):
    proj, _ = project
    event = exception_event("ValueError", "bad \x00 byte", tags={"k\x00": "v\x00"})
    issue = ingest(proj.pk, event)
    assert "\x00" not in issue.title


def test_messages_differing_only_past_the_string_limit_group_together(project):
    """Grouping reads at most MAX_STRING_LENGTH characters of a message (the scrubber's bound):
    a megabyte of log output appended to an error does not make it a new issue."""
    from errors.scrubbing import MAX_STRING_LENGTH

    proj, _ = project
    head = "query failed: " + "x" * MAX_STRING_LENGTH
    first = make_event(exception=None, message=head + " tail one")
    second = make_event(exception=None, message=head + " and a different tail " * 1000)
    assert grouping.fingerprint(first) == grouping.fingerprint(second)
    assert ingest(proj.pk, first) == ingest(proj.pk, second)
