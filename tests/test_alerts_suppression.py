"""Silences and active maintenance windows suppress notifications; the alerts are still kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from alerts import services
from alerts.models import Alert, Delivery, Kind, Silence
from maintenance.models import MaintenanceWindow
from tests.fixtures_alerts import T0, flush

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("allow_loopback", "memory_broker")]


def test_a_silence_suppresses_matching_keys_and_they_are_still_listed(sent, admin) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        Silence.objects.create(
            pattern="health:*",
            ends_at=T0 + timedelta(hours=1),
            reason="replacing the database host",
            created_by=admin,
        )
        services.fire("health:database", kind=Kind.HEALTH, summary="down")
        services.fire("threshold:cpu:web-1", kind=Kind.PERFORMANCE, summary="cpu 99%")
        flush(clock)
    assert len(sent) == 1  # only the unsilenced threshold alert
    muted = Alert.objects.get(key="health:database")
    assert muted.state == Alert.State.FIRING
    assert muted.suppressed_by.startswith("silence #")
    assert "replacing the database host" in muted.suppressed_by
    assert muted.last_notified_at is None


def test_an_alert_still_firing_when_its_silence_ends_is_sent_then(sent, admin) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        Silence.objects.create(
            pattern="health:database",
            ends_at=T0 + timedelta(minutes=10),
            reason="planned",
            created_by=admin,
        )
        services.fire("health:database", kind=Kind.HEALTH, summary="down")
        flush(clock)
        assert sent == []
        clock.move_to(T0 + timedelta(minutes=10))
        flush(clock, 0)
        flush(clock, 30)
    assert len(sent) == 1
    assert Alert.objects.get().suppressed_by == ""


def test_a_silence_created_during_the_group_wait_still_suppresses(sent, admin) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        services.fire("health:database", kind=Kind.HEALTH, summary="down")
        clock.shift(10)
        Silence.objects.create(
            pattern="health:*", ends_at=T0 + timedelta(hours=1), reason="known", created_by=admin
        )
        flush(clock)
    assert sent == []
    assert Delivery.objects.count() == 0


def test_an_active_maintenance_window_suppresses_matching_keys(sent) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        window = MaintenanceWindow.objects.create(
            starts_at=T0 - timedelta(minutes=5),
            ends_at=T0 + timedelta(hours=1),
            message="database upgrade",
            silence_keys=["health:*", "threshold:*:db-1"],
        )
        services.fire("health:database", kind=Kind.HEALTH, summary="down")
        services.fire("threshold:cpu:db-1", kind=Kind.PERFORMANCE, summary="cpu 99%")
        services.fire("threshold:cpu:web-1", kind=Kind.PERFORMANCE, summary="cpu 99%")
        flush(clock)
    assert len(sent) == 1
    assert "threshold:cpu:web-1" in sent[0]["body"].decode()
    muted = Alert.objects.exclude(suppressed_by="").order_by("key")
    assert [a.key for a in muted] == ["health:database", "threshold:cpu:db-1"]
    assert all(
        a.suppressed_by == f"maintenance window #{window.pk}: database upgrade" for a in muted
    )


def test_a_window_that_has_not_started_or_has_ended_suppresses_nothing(sent) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        MaintenanceWindow.objects.create(
            starts_at=T0 + timedelta(hours=1), ends_at=T0 + timedelta(hours=2), silence_keys=["*"]
        )
        MaintenanceWindow.objects.create(
            starts_at=T0 - timedelta(hours=2), ends_at=T0 - timedelta(hours=1), silence_keys=["*"]
        )
        services.fire("health:database", kind=Kind.HEALTH, summary="down")
        flush(clock)
    assert len(sent) == 1


def test_a_silenced_alert_that_resolves_unseen_sends_no_resolved_notice(sent, admin) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        Silence.objects.create(
            pattern="*", ends_at=T0 + timedelta(hours=1), reason="x", created_by=admin
        )
        services.fire("health:database", kind=Kind.HEALTH, summary="down")
        flush(clock)
        services.resolve("health:database")
        flush(clock)
    assert sent == []
