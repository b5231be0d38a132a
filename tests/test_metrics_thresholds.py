"""Thresholds: seed defaults, sustained-for, hysteresis and exactly-once signals, frozen time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client

from metrics.models import Threshold, ThresholdState
from metrics.signals import performance_threshold_exceeded, performance_threshold_recovered
from metrics.thresholds import Observation, alert_key, evaluate
from opsconsole.models import SystemLog

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
def sent() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    events: list[tuple[str, dict[str, Any]]] = []

    def exceeded(sender: Any, **kwargs: Any) -> None:
        kwargs.pop("signal", None)
        events.append(("exceeded", kwargs))

    def recovered(sender: Any, **kwargs: Any) -> None:
        kwargs.pop("signal", None)
        events.append(("recovered", kwargs))

    performance_threshold_exceeded.connect(exceeded, dispatch_uid="test-exceeded")
    performance_threshold_recovered.connect(recovered, dispatch_uid="test-recovered")
    yield events
    performance_threshold_exceeded.disconnect(dispatch_uid="test-exceeded")
    performance_threshold_recovered.disconnect(dispatch_uid="test-recovered")


def cpu(value: float, host: str = "web-1") -> list[Observation]:
    return [Observation("cpu_percent", host, value, "%")]


def run(minutes: int, value: float, host: str = "web-1") -> list[str]:
    with time_machine.travel(T0 + timedelta(minutes=minutes), tick=False):
        return evaluate(cpu(value, host))


def test_the_seed_defaults_are_installed() -> None:
    rules = {t.metric: t for t in Threshold.objects.all()}
    assert rules["cpu_percent"].warning == 90
    assert rules["memory_percent"].warning == 90
    assert rules["disk_percent"].warning == 90
    assert rules["load_per_core"].warning == 1.0  # load above the core count
    assert rules["response_time_p95_ms"].warning == 200
    assert all(t.comparison == "gt" and t.host == "" for t in rules.values())


def test_it_fires_only_once_the_level_is_sustained_and_sends_exactly_once(sent: list) -> None:
    Threshold.objects.filter(metric="cpu_percent").update(sustained_minutes=5, critical=97)
    run(0, 95)
    run(3, 96)
    assert sent == []  # held for 3 minutes of the 5
    run(5, 94)
    assert sent == [
        (
            "exceeded",
            {
                "metric": "cpu_percent",
                "host": "web-1",
                "level": "warning",
                "value": 94,
                "threshold": 90.0,
                "unit": "%",
            },
        )
    ]
    run(6, 95)
    run(7, 93)
    assert len(sent) == 1  # still firing: nothing new
    state = ThresholdState.objects.get()
    assert state.level == "warning"
    assert alert_key(state.metric, state.host) == "threshold:cpu_percent:web-1"


def test_a_dip_before_the_period_is_over_restarts_the_clock(sent: list) -> None:
    Threshold.objects.filter(metric="cpu_percent").update(sustained_minutes=5)
    run(0, 95)
    run(3, 50)
    run(4, 95)
    run(8, 95)
    assert sent == []
    run(9, 95)
    assert [e[0] for e in sent] == ["exceeded"]


def test_it_resolves_only_below_the_recovery_level(sent: list) -> None:
    Threshold.objects.filter(metric="cpu_percent").update(sustained_minutes=0, recovery=80)
    run(0, 92)
    assert [e[0] for e in sent] == ["exceeded"]
    run(1, 85)  # under the warning level but not under the recovery level: still firing
    run(2, 91)
    assert len(sent) == 1
    run(3, 79)
    assert sent[-1] == (
        "recovered",
        {"metric": "cpu_percent", "host": "web-1", "value": 79, "unit": "%"},
    )
    run(4, 60)
    assert len(sent) == 2
    assert ThresholdState.objects.get().level == "ok"


def test_rising_to_critical_sends_again_but_falling_back_to_warning_does_not(sent: list) -> None:
    Threshold.objects.filter(metric="cpu_percent").update(sustained_minutes=0, critical=98)
    run(0, 92)
    run(1, 99)
    run(2, 93)
    assert [(e[0], e[1]["level"]) for e in sent] == [
        ("exceeded", "warning"),
        ("exceeded", "critical"),
    ]
    assert sent[1][1]["threshold"] == 98.0


def test_a_host_specific_rule_wins_and_hosts_are_tracked_apart(sent: list) -> None:
    Threshold.objects.filter(metric="cpu_percent").update(sustained_minutes=0)
    Threshold.objects.create(metric="cpu_percent", host="batch-1", warning=99.5)
    run(0, 95, host="web-1")
    run(0, 95, host="batch-1")
    assert [(e[1]["host"]) for e in sent] == ["web-1"]


def test_a_second_evaluator_of_the_same_sample_sends_nothing(sent: list) -> None:
    Threshold.objects.filter(metric="cpu_percent").update(sustained_minutes=0)
    run(0, 95)
    state = ThresholdState.objects.get()
    # A second worker that read the old level before the first one's update:
    from metrics.thresholds import _transition

    assert _transition(state, "ok", "warning", T0, lambda: sent.append(("dup", {}))) is None
    assert [e[0] for e in sent] == ["exceeded"]


def test_disks_are_watched_per_mount(sent: list) -> None:
    obs = [
        Observation("disk_percent", "db-1", 95.0, "%", "/var/lib/postgresql"),
        Observation("disk_percent", "db-1", 40.0, "%", "/"),
    ]
    with time_machine.travel(T0, tick=False):
        evaluate(obs)
    assert [(e[1]["metric"], e[1]["host"]) for e in sent] == [
        ("disk_percent:/var/lib/postgresql", "db-1")
    ]


def test_a_disabled_threshold_is_ignored(sent: list) -> None:
    Threshold.objects.filter(metric="cpu_percent").update(enabled=False)
    run(0, 100)
    assert sent == []


def test_a_threshold_change_in_the_admin_is_audited(admin: Any) -> None:
    client = Client()
    client.force_login(admin)
    rule = Threshold.objects.get(metric="cpu_percent")
    response = client.post(
        f"/admin/metrics/threshold/{rule.pk}/change/",
        {
            "metric": "cpu_percent",
            "host": "",
            "comparison": "gt",
            "warning": "85",
            "critical": "95",
            "recovery": "80",
            "sustained_minutes": "10",
            "enabled": "on",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    rule.refresh_from_db()
    assert (rule.warning, rule.critical, rule.recovery, rule.sustained_minutes) == (85, 95, 80, 10)
    log = SystemLog.objects.get(action="admin.change")
    assert log.actor_name == "alice"
    assert "metrics.threshold" in log.target


def test_the_admin_refuses_inconsistent_levels(admin: Any) -> None:
    client = Client()
    client.force_login(admin)
    response = client.post(
        "/admin/metrics/threshold/add/",
        {
            "metric": "swap_percent",
            "host": "",
            "comparison": "gt",
            "warning": "90",
            "critical": "80",
            "recovery": "",
            "sustained_minutes": "0",
        },
    )
    assert response.status_code == 200
    assert b"The critical level must be past the warning." in response.content
    response = client.post(
        "/admin/metrics/threshold/add/",
        {
            "metric": "swap_percent",
            "host": "",
            "comparison": "gt",
            "warning": "",
            "critical": "",
            "recovery": "",
            "sustained_minutes": "0",
        },
    )
    assert b"Set a warning level, a critical level, or both." in response.content
    assert not Threshold.objects.filter(metric="swap_percent").exists()
