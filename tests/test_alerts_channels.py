"""Channels against real servers: SMTP (aiosmtpd), Slack and a signed webhook (local HTTP)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.test import override_settings

from alerts import services, signing
from alerts.models import Channel, Delivery, Kind, Severity
from tests.conftest import free_port
from tests.fixtures_alerts import T0, answer, deliver_due, make_channel

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("memory_broker")]


def fire_and_send(key: str = "health:database", **fields: Any) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        fields.setdefault("summary", "database is unreachable")
        fields.setdefault("kind", Kind.HEALTH)
        fields.setdefault("severity", Severity.CRITICAL)
        services.fire(key, **fields)
        clock.shift(30)
        services.dispatch_due()
        deliver_due()


def test_a_real_smtp_server_receives_the_email_with_text_and_html_parts(smtp_server) -> None:
    make_channel(Channel.Type.EMAIL, recipients="oncall@example.com\nlead@example.com")
    fire_and_send()
    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0]
    assert sorted(smtp_server.envelopes[0].rcpt_tos) == ["lead@example.com", "oncall@example.com"]
    assert message["Subject"] == "[FIRING:1] Health check failed health:database"
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "database is unreachable" in text and "[CRITICAL] health:database" in text
    assert "<code>health:database</code>" in html
    assert 'href="http://127.0.0.1:8000/admin/alerts/alert/' in html
    assert Delivery.objects.get().response_code == 250


def test_an_unreachable_smtp_server_is_a_failed_delivery_with_its_reason() -> None:
    port = free_port()  # nothing listens there
    make_channel(Channel.Type.EMAIL)
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=port,
        ALERTS_MAX_ATTEMPTS=1,
    ):
        fire_and_send()
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.FAILED
    assert f"cannot send through SMTP 127.0.0.1:{port}" in delivery.error
    assert "refused" in delivery.error.lower()


def test_a_real_http_server_receives_the_webhook_and_the_signature_verifies(
    http_server, allow_loopback
) -> None:
    url = http_server(answer(204, b""))
    channel = make_channel(Channel.Type.WEBHOOK, url=f"{url}/hooks/ops", allow_private=True)
    fire_and_send()
    (request,) = http_server.requests
    assert request["path"] == "/hooks/ops"
    assert request["headers"]["Content-Type"] == "application/json"
    header = request["headers"][signing.HEADER]
    assert signing.verify(channel.secret, header, request["body"], now=T0.timestamp() + 30)
    # Tampering with the body or using another secret breaks it.
    assert not signing.verify(channel.secret, header, request["body"] + b" ", now=T0.timestamp())
    assert not signing.verify("another-secret-entirely", header, request["body"])
    payload = json.loads(request["body"])
    assert payload["notification"] == "HealthCheckFailedNotification"
    assert payload["alerts"][0]["key"] == "health:database"
    assert Delivery.objects.get().response_code == 204


def test_a_stale_signature_is_refused() -> None:
    header = signing.sign("s" * 32, b"{}", 1_000)
    assert signing.verify("s" * 32, header, b"{}", now=1_100)
    assert not signing.verify("s" * 32, header, b"{}", now=1_000 + 301)
    assert not signing.verify("s" * 32, "garbage", b"{}", now=1_000)


def test_slack_gets_blocks_with_the_severity_colour_and_a_link(http_server, allow_loopback) -> None:
    url = http_server(answer(200))
    make_channel(Channel.Type.SLACK, url=f"{url}/services/T/B/X", allow_private=True)
    fire_and_send(url="/admin/health/")
    payload = json.loads(http_server.requests[0]["body"])
    attachment = payload["attachments"][0]
    assert attachment["color"] == "#d63031"
    section = attachment["blocks"][1]
    assert "*CRITICAL* `health:database`" in section["text"]["text"]
    assert section["accessory"]["url"] == "http://127.0.0.1:8000/admin/health/"


def test_each_channel_gets_only_its_severity_and_key_prefixes(http_server, allow_loopback) -> None:
    url = http_server(answer(200))
    make_channel(
        Channel.Type.WEBHOOK,
        name="backups",
        url=f"{url}/backups",
        allow_private=True,
        key_prefixes="backup:",
    )
    make_channel(
        Channel.Type.WEBHOOK,
        name="pager",
        url=f"{url}/pager",
        allow_private=True,
        min_severity=Severity.CRITICAL,
    )
    with time_machine.travel(T0, tick=False) as clock:
        services.fire(
            "backup:failed", kind=Kind.BACKUP_FAILED, severity=Severity.WARNING, summary="disk full"
        )
        services.fire("health:db", kind=Kind.HEALTH, severity=Severity.CRITICAL, summary="down")
        clock.shift(30)
        services.dispatch_due()
        deliver_due()
    got = {r["path"]: json.loads(r["body"]) for r in http_server.requests}
    assert [a["key"] for a in got["/backups"]["alerts"]] == ["backup:failed"]
    assert [a["key"] for a in got["/pager"]["alerts"]] == ["health:db"]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"type": "webhook", "url": "not a url"}, "url", "Enter a valid URL"),
        ({"type": "webhook", "url": "http://127.0.0.1:9/x"}, "url", "private or reserved"),
        ({"type": "slack", "url": "http://169.254.169.254/latest/"}, "url", "private or reserved"),
        ({"type": "slack", "url": "http://10.1.2.3/hook"}, "url", "private or reserved"),
        ({"type": "slack", "url": ""}, "url", "need a URL"),
        ({"type": "email", "recipients": ""}, "recipients", "at least one recipient"),
        ({"type": "email", "recipients": "ops@example.com, nope"}, "recipients", "'nope'"),
        ({"type": "webhook", "url": "https://93.184.215.14/", "secret": "short"}, "secret", "16"),
    ],
)
def test_bad_channel_configuration_is_a_clear_validation_error(fields, field, message) -> None:
    channel = Channel(name="bad", **fields)
    with pytest.raises(ValidationError) as caught:
        channel.full_clean()
    assert message in " ".join(caught.value.message_dict[field])


def test_a_channel_may_reach_loopback_only_when_explicitly_allowed() -> None:
    Channel(name="ok", type="webhook", url="http://127.0.0.1:9/x", allow_private=True).full_clean()
    with override_settings(OPS_HTTP_ALLOW_NETWORKS=["127.0.0.0/8"]):
        Channel(name="ok2", type="webhook", url="http://127.0.0.1:9/x").full_clean()


def test_a_destination_that_became_private_is_refused_at_send_time_with_the_reason() -> None:
    channel = make_channel(Channel.Type.WEBHOOK, url="http://93.184.215.14/hook")
    Channel.objects.filter(pk=channel.pk).update(url="http://127.0.0.1:9/hook")
    fire_and_send()
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.FAILED  # refusals are not retried
    assert delivery.error.startswith("refused destination: 127.0.0.1 resolves to 127.0.0.1")
