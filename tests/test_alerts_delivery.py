"""Deliveries: a failing Slack is retried with exponential backoff while the other channels are
delivered on time; nothing here blocks the work that raised the alert."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import override_settings

from alerts import services
from alerts.delivery import attempt_delivery, backoff
from alerts.models import Alert, Channel, Delivery, Kind, Severity
from health.signals import health_check_failed
from tests.fixtures_alerts import T0, answer, deliver_due, make_channel

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("allow_loopback", "memory_broker")]


def slow(seconds: float) -> Any:
    release = threading.Event()

    def handle(handler: Any) -> None:
        release.wait(seconds)
        try:
            handler.send_response(200)
            handler.end_headers()
        except OSError:
            pass  # the client gave up first, as intended

    handle.release = release  # type: ignore[attr-defined]
    return handle


def test_backoff_doubles_up_to_the_cap() -> None:
    with override_settings(
        ALERTS_RETRY_BACKOFF=timedelta(seconds=10), ALERTS_RETRY_BACKOFF_MAX=timedelta(minutes=1)
    ):
        assert [backoff(n).total_seconds() for n in range(1, 6)] == [10, 20, 40, 60, 60]


def test_a_slack_endpoint_answering_500_is_retried_with_backoff_while_others_are_delivered(
    http_server, smtp_server
) -> None:
    slack = make_channel(
        Channel.Type.SLACK,
        name="a-slack",
        url=http_server(answer(500, b"internal_error")),
        allow_private=True,
    )
    hook = make_channel(
        Channel.Type.WEBHOOK, name="b-hook", url=http_server(answer(200)), allow_private=True
    )
    mail = make_channel(Channel.Type.EMAIL, name="c-mail")
    with time_machine.travel(T0, tick=False) as clock:
        services.fire(
            "health:database", kind=Kind.HEALTH, severity=Severity.CRITICAL, summary="down"
        )
        clock.shift(30)
        services.dispatch_due()
        deliver_due()
        delivered = Delivery.objects.filter(status=Delivery.Status.DELIVERED)
        assert {d.channel for d in delivered} == {hook, mail}
        assert all(d.delivered_at == T0 + timedelta(seconds=30) for d in delivered)
        waits = []
        for _ in range(5):
            failing = Delivery.objects.get(channel=slack)
            assert failing.status == Delivery.Status.RETRYING
            assert failing.response_code == 500
            assert failing.error == "HTTP 500: internal_error"
            assert failing.next_attempt_at and failing.last_attempt_at
            wait = failing.next_attempt_at - failing.last_attempt_at
            waits.append(wait.total_seconds())
            clock.shift(wait - timedelta(seconds=1))
            assert attempt_delivery(failing.pk) is None  # not due yet
            clock.shift(1)
            attempt_delivery(failing.pk)
        failing.refresh_from_db()
    assert waits == [10, 20, 40, 80, 160]
    assert failing.status == Delivery.Status.FAILED
    assert failing.attempts == 6
    assert len(smtp_server.messages) == 1


def test_a_slack_endpoint_that_times_out_costs_one_timeout_and_the_others_still_arrive(
    http_server, smtp_server
) -> None:
    hang = slow(5)
    slack = make_channel(
        Channel.Type.SLACK, name="a-slack", url=http_server(hang), allow_private=True
    )
    make_channel(
        Channel.Type.WEBHOOK, name="b-hook", url=http_server(answer(200)), allow_private=True
    )
    make_channel(Channel.Type.EMAIL, name="c-mail")
    with override_settings(ALERTS_HTTP_TIMEOUT=0.5):
        with time_machine.travel(T0, tick=False) as clock:
            services.fire("health:database", kind=Kind.HEALTH, summary="down")
            clock.shift(30)
            services.dispatch_due()
            started = time.monotonic()
            deliver_due()
            elapsed = time.monotonic() - started
        hang.release.set()
    failing = Delivery.objects.get(channel=slack)
    assert failing.status == Delivery.Status.RETRYING
    assert failing.error == "timed out after 0.5 s"
    assert failing.next_attempt_at == T0 + timedelta(seconds=40)
    assert Delivery.objects.filter(status=Delivery.Status.DELIVERED).count() == 2
    assert elapsed < 3
    assert len(smtp_server.messages) == 1


def test_the_signal_sender_never_waits_for_channels_nor_sees_their_errors(http_server) -> None:
    make_channel(Channel.Type.SLACK, url=http_server(slow(5)), allow_private=True)
    started = time.monotonic()
    health_check_failed.send(
        sender=None,
        component="database",
        status="fail",
        output="connection refused",
        health_check=None,
    )
    assert time.monotonic() - started < 0.5
    assert Alert.objects.get().key == "health:database"


def test_a_receiver_that_fails_does_not_raise_into_the_sender(caplog) -> None:
    # Missing documented kwargs: the receiver logs the problem, the sender carries on.
    results = health_check_failed.send_robust(sender=None)
    assert all(error is None for _, error in results)
    health_check_failed.send(sender=None)
    assert "could not record an alert" in caplog.text
    assert Alert.objects.count() == 0


def test_a_webhook_payload_is_the_same_on_every_retry(http_server) -> None:
    answers = [500, 200]

    def handle(handler: Any) -> None:
        handler.send_response(answers.pop(0))
        handler.end_headers()

    make_channel(Channel.Type.WEBHOOK, url=http_server(handle), allow_private=True)
    with time_machine.travel(T0, tick=False) as clock:
        services.fire("backup:failed", kind=Kind.BACKUP_FAILED, summary="disk full")
        clock.shift(30)
        services.dispatch_due()
        deliver_due()
        services.fire("backup:failed", kind=Kind.BACKUP_FAILED, summary="still full")
        clock.shift(10)
        deliver_due()
    first, second = (json.loads(r["body"]) for r in http_server.requests)
    assert first == second
    assert Delivery.objects.get().status == Delivery.Status.DELIVERED


def test_a_channel_disabled_before_delivery_is_logged_as_failed(http_server) -> None:
    channel = make_channel(Channel.Type.WEBHOOK, url=http_server(answer(200)), allow_private=True)
    with time_machine.travel(T0, tick=False) as clock:
        services.fire("health:db", kind=Kind.HEALTH, summary="down")
        clock.shift(30)
        services.dispatch_due()
        Channel.objects.filter(pk=channel.pk).update(enabled=False)
        deliver_due()
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.error == "the channel was disabled before delivery"
    assert http_server.requests == []
