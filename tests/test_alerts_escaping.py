"""Text from ingested events reaches Slack, email and webhooks inert: no mentions, no links."""

from __future__ import annotations

import json

import pytest
import time_machine

from alerts import services as alerts
from alerts.models import Channel
from alerts.notifications import slack_escape
from errors import services as errors
from errors.ingest import Envelope
from errors.models import ErrorProject, ProjectKey
from tests.fixtures_alerts import T0, answer, deliver_due, make_channel
from tests.fixtures_errors import make_event

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("memory_broker")]

HOSTILE = "<!channel> <https://evil.example|login>"


def ingest_hostile_error(project: tuple[ErrorProject, ProjectKey]) -> None:
    """An error event whose message pings everyone and disguises a link, then the alert sent."""
    proj, _ = project
    proj.alert_on_new_issue = True
    proj.save()
    event = make_event(message=HOSTILE)
    del event["exception"]  # the message alone is the issue's title
    with time_machine.travel(T0, tick=False) as clock:
        errors.enqueue(
            proj.pk,
            Envelope(headers={}, event=json.dumps(event).encode(), event_id=event["event_id"]),
        )
        errors.digest()
        clock.shift(30)
        alerts.dispatch_due()
        deliver_due()


def test_it_posts_event_text_to_slack_escaped_so_it_cannot_ping_or_link(
    project, http_server, allow_loopback
) -> None:
    url = http_server(answer(200))
    make_channel(Channel.Type.SLACK, url=f"{url}/services/T/B/X", allow_private=True)
    ingest_hostile_error(project)
    (request,) = http_server.requests
    body = request["body"].decode()
    assert "<!channel>" not in body and "<https://" not in body
    payload = json.loads(body)
    section = payload["attachments"][0]["blocks"][1]["text"]
    assert "&lt;!channel&gt; &lt;https://evil.example|login&gt;" in section["text"]
    # verbatim stops Slack from turning the bare URL into a link of its own.
    assert section["verbatim"] is True
    every_text = [payload["text"]] + [
        b["text"]["text"] for b in payload["attachments"][0]["blocks"] if "text" in b
    ]
    assert not any("<" in text or ">" in text for text in every_text)


def test_it_sends_event_text_in_email_escaped_in_html_and_as_typed_in_text(
    project, smtp_server
) -> None:
    make_channel(Channel.Type.EMAIL)
    ingest_hostile_error(project)
    (message,) = smtp_server.messages
    html = message.get_body(preferencelist=("html",)).get_content()
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "<!channel>" not in html and "<https://" not in html
    assert "&lt;!channel&gt; &lt;https://evil.example|login&gt;" in html
    assert HOSTILE in text  # the plain part is read as plain text: shown exactly as sent


def test_it_sends_event_text_to_webhooks_json_encoded_unchanged(
    project, http_server, allow_loopback
) -> None:
    url = http_server(answer(204, b""))
    make_channel(Channel.Type.WEBHOOK, url=f"{url}/hook", allow_private=True)
    ingest_hostile_error(project)
    (request,) = http_server.requests
    (alert,) = json.loads(request["body"])["alerts"]
    assert HOSTILE in alert["summary"]


def test_it_caps_slack_text_after_escaping_without_cutting_an_entity() -> None:
    capped = slack_escape("<" * 5000, 3000)
    assert len(capped) <= 3000
    assert capped.endswith("&lt;…")
    assert slack_escape("a & b") == "a &amp; b"
