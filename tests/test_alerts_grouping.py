"""Grouping, dedup, repeat interval and resolved notices, walked through with frozen time."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import time_machine

from alerts import services
from alerts.models import Alert, Channel, Delivery, Kind, Notification, Severity
from metrics.signals import performance_threshold_exceeded
from tests.fixtures_alerts import T0, answer, deliver_due, make_channel

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("allow_loopback", "memory_broker")]


@pytest.fixture
def hook(http_server: Any) -> tuple[Channel, list[dict[str, Any]]]:
    url = http_server(answer(200))
    channel = make_channel(Channel.Type.WEBHOOK, url=f"{url}/hook", allow_private=True)
    return channel, http_server.requests


def bodies(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(r["body"]) for r in requests]


def test_it_waits_the_group_wait_then_sends_alerts_that_fired_within_it_together(hook) -> None:
    _, requests = hook
    with time_machine.travel(T0, tick=False) as clock:
        services.fire(
            "health:database", kind=Kind.HEALTH, severity=Severity.CRITICAL, summary="database down"
        )
        clock.shift(12)
        services.fire(
            "health:redis", kind=Kind.HEALTH, severity=Severity.CRITICAL, summary="redis down"
        )
        clock.shift(17)  # 29 s after the first: still waiting
        services.dispatch_due()
        assert deliver_due() == []
        clock.shift(1)  # 30 s: the group wait is over
        services.dispatch_due()
        deliver_due()
    assert len(requests) == 1
    sent = bodies(requests)[0]
    assert sent["notification"] == "HealthCheckFailedNotification"
    assert sorted(a["key"] for a in sent["alerts"]) == ["health:database", "health:redis"]
    assert sent["title"].startswith("[FIRING:2]")


def test_it_does_not_resend_a_firing_key_before_the_repeat_interval(hook) -> None:
    _, requests = hook
    with time_machine.travel(T0, tick=False) as clock:
        services.fire("threshold:cpu:web-1", kind=Kind.PERFORMANCE, summary="cpu 95%")
        clock.shift(30)
        services.dispatch_due()
        deliver_due()
        assert len(requests) == 1
        for _ in range(3):  # re-fired for almost four hours
            clock.shift(timedelta(hours=1, minutes=19))
            services.fire("threshold:cpu:web-1", kind=Kind.PERFORMANCE, summary="cpu 96%")
            services.dispatch_due()
            deliver_due()
        assert len(requests) == 1
        alert = Alert.objects.get(key="threshold:cpu:web-1")
        assert alert.occurrences == 4
        clock.move_to(T0 + timedelta(seconds=30) + timedelta(hours=4))
        services.dispatch_due()  # the repeat joins a new group...
        assert deliver_due() == []
        clock.shift(30)  # ...sent a group wait later
        services.dispatch_due()
        deliver_due()
    assert len(requests) == 2
    assert bodies(requests)[1]["alerts"][0]["occurrences"] == 4


def test_it_sends_an_escalation_at_once_whatever_the_repeat_interval(hook) -> None:
    _, requests = hook
    with time_machine.travel(T0, tick=False) as clock:
        services.fire("threshold:mem:db-1", kind=Kind.PERFORMANCE, summary="mem 85%")
        clock.shift(30)
        services.dispatch_due()
        deliver_due()
        clock.shift(60)
        services.fire(
            "threshold:mem:db-1",
            kind=Kind.PERFORMANCE,
            severity=Severity.CRITICAL,
            summary="mem 97%",
        )
        clock.shift(30)
        services.dispatch_due()
        deliver_due()
    assert [b["severity"] for b in bodies(requests)] == ["warning", "critical"]


def test_a_resolve_sends_exactly_one_resolved_notice(hook) -> None:
    _, requests = hook
    with time_machine.travel(T0, tick=False) as clock:
        services.fire("health:cache", kind=Kind.HEALTH, summary="cache down")
        clock.shift(30)
        services.dispatch_due()
        deliver_due()
        clock.shift(300)
        services.resolve("health:cache")
        services.resolve("health:cache")  # a second recovery signal changes nothing
        clock.shift(30)
        services.dispatch_due()
        deliver_due()
        clock.shift(timedelta(hours=5))
        services.resolve("health:cache")
        services.dispatch_due()
        deliver_due()
    sent = bodies(requests)
    assert [b["status"] for b in sent] == ["firing", "resolved"]
    assert sent[1]["notification"] == "HealthCheckRecoveredNotification"
    assert sent[1]["alerts"][0]["resolved_at"] is not None


def test_an_alert_resolved_within_the_group_wait_is_never_sent(hook) -> None:
    _, requests = hook
    with time_machine.travel(T0, tick=False) as clock:
        services.fire("health:disk", kind=Kind.HEALTH, summary="disk full")
        clock.shift(10)
        services.resolve("health:disk")
        clock.shift(60)
        services.dispatch_due()
        deliver_due()
    assert requests == []
    assert Notification.objects.get().status == Notification.Status.EMPTY
    assert Alert.objects.get(key="health:disk").state == Alert.State.RESOLVED


def test_a_storm_of_a_thousand_identical_signals_sends_one_notification_per_channel(
    hook, smtp_server, http_server
) -> None:
    _, requests = hook
    slack = make_channel(
        Channel.Type.SLACK, url=http_server(answer(200)) + "/slack", allow_private=True
    )
    make_channel(Channel.Type.EMAIL)
    with time_machine.travel(T0, tick=False) as clock:
        for i in range(1000):  # 1,000 signals within a minute, the beat dispatching every 10 s
            performance_threshold_exceeded.send(
                sender=None,
                metric="cpu",
                host="web-1",
                level="critical",
                value=99.0,
                threshold=90.0,
                unit="%",
            )
            clock.shift(0.059)
            if i % 170 == 169:
                services.dispatch_due()
                deliver_due()
        clock.shift(30)
        services.dispatch_due()
        deliver_due()
    alert = Alert.objects.get()
    assert alert.occurrences == 1000
    assert Delivery.objects.filter(status=Delivery.Status.DELIVERED).count() == 3
    assert len([r for r in requests if r["path"] == "/hook"]) == 1
    assert len([r for r in requests if r["path"] == "/slack"]) == 1
    assert len(smtp_server.messages) == 1
    assert slack.deliveries.count() == 1
