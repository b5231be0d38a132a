"""Every signal on main becomes the right alert (sent here with the documented kwargs)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import time_machine

from alerts import services
from alerts.models import Alert, Channel, Kind, Severity
from backups.signals import backup_completed, backup_failed
from errors.signals import critical_error_occurred
from health.signals import health_check_failed, health_check_recovered
from maintenance.signals import maintenance_window_ended, maintenance_window_started
from metrics.signals import performance_threshold_exceeded, performance_threshold_recovered
from tests.fixtures_alerts import T0, answer, flush, make_channel

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("allow_loopback", "memory_broker")]


def payloads(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(r["body"]) for r in requests]


def test_a_failed_health_check_fires_and_its_recovery_resolves(sent) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        health_check_failed.send(
            sender=None,
            component="database",
            status="fail",
            output="connection refused",
            health_check=None,
        )
        flush(clock)
        health_check_recovered.send(
            sender=None, component="database", status="pass", health_check=None
        )
        flush(clock)
    first, second = payloads(sent)
    assert first["notification"] == "HealthCheckFailedNotification"
    assert first["alerts"][0]["summary"] == "Health check database is failing: connection refused"
    assert first["alerts"][0]["url"] == "http://127.0.0.1:8000/health/database"
    assert second["notification"] == "HealthCheckRecoveredNotification"


def test_a_threshold_fires_with_its_level_and_resolves(sent) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        performance_threshold_exceeded.send(
            sender=None,
            metric="cpu",
            host="web-1",
            level="warning",
            value=91.5,
            threshold=90.0,
            unit="%",
        )
        flush(clock)
        performance_threshold_recovered.send(
            sender=None, metric="cpu", host="web-1", value=40.0, unit="%"
        )
        flush(clock)
    first, second = payloads(sent)
    assert first["notification"] == "PerformanceDegradationNotification"
    assert first["alerts"][0]["key"] == "threshold:cpu:web-1"
    assert first["alerts"][0]["severity_name"] == "warning"
    assert first["alerts"][0]["summary"] == "cpu on web-1 is 91.5% (warning, threshold 90%)"
    assert second["notification"] == "PerformanceRecoveredNotification"


def test_a_critical_error_fires_once_per_issue_and_expires_after_the_repeat_interval(sent) -> None:
    kwargs = dict(
        issue_id=42,
        project="shop",
        title="ZeroDivisionError",
        severity="error",
        reason="critical",
        url="/admin/errors/issue/42/change/",
        count=3,
    )
    with time_machine.travel(T0, tick=False) as clock:
        critical_error_occurred.send(sender=None, **kwargs)
        critical_error_occurred.send(sender=None, **kwargs)
        flush(clock)
        clock.shift(timedelta(hours=4))
        services.dispatch_due()
    (only,) = payloads(sent)
    assert only["alerts"][0]["key"] == "errors:issue:42"
    assert only["alerts"][0]["severity_name"] == "critical"
    assert only["alerts"][0]["url"] == "http://127.0.0.1:8000/admin/errors/issue/42/change/"
    alert = Alert.objects.get()
    assert alert.occurrences == 2
    assert alert.state == Alert.State.RESOLVED  # expired quietly: no resolved notice


def test_a_completed_backup_is_an_info_notice_and_resolves_the_failure(sent) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        backup_failed.send(
            sender=None, backup_id=None, kind="database", reason="disk full", phase="backup"
        )
        flush(clock)
        backup_completed.send(sender=None, backup_id=7, kind="database", size=2048, duration=1.25)
        flush(clock)
        services.dispatch_due()
    by_class = {p["notification"]: p for p in payloads(sent)}
    assert set(by_class) == {
        "BackupFailedNotification",
        "BackupFailureResolvedNotification",
        "BackupCompletedNotification",
    }
    completed = by_class["BackupCompletedNotification"]["alerts"][0]
    assert completed["summary"] == "database backup #7 completed: 2,048 bytes in 1.2 s"
    assert completed["severity_name"] == "info"
    assert not Alert.objects.firing().exists()


def test_a_failed_verification_has_its_own_key(sent) -> None:
    with time_machine.travel(T0, tick=False):
        backup_failed.send(
            sender=None, backup_id=9, kind="files", reason="checksum differs", phase="verify"
        )
    alert = Alert.objects.get()
    assert (alert.key, alert.kind, alert.severity) == (
        "backup:verify",
        Kind.BACKUP_FAILED,
        Severity.CRITICAL,
    )
    assert alert.summary == "backup #9 failed during verify: checksum differs"


def test_a_maintenance_window_is_announced_and_its_end_resolves_it(sent) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        maintenance_window_started.send(
            sender=None,
            window_id=3,
            message="db upgrade",
            silence_keys=["health:*"],
            ends_at=T0 + timedelta(hours=1),
        )
        flush(clock)
        maintenance_window_ended.send(sender=None, window_id=3)
        flush(clock)
    first, second = payloads(sent)
    assert first["alerts"][0]["key"] == "maintenance:window:3"
    assert first["alerts"][0]["summary"].startswith("Maintenance window started until")
    assert second["status"] == "resolved"


def test_a_channel_at_the_default_severity_hears_of_failed_backups_but_not_of_each_success(
    http_server: Any,
) -> None:
    # Decided: a completed backup is an info notice, for channels that ask for info; the
    # default (warning) channel hears of failures and of the failure clearing, not of every
    # nightly success.
    channel = make_channel(
        Channel.Type.WEBHOOK, url=http_server(answer(200)), allow_private=True, min_severity=20
    )
    assert channel.min_severity == Channel._meta.get_field("min_severity").default
    with time_machine.travel(T0, tick=False) as clock:
        backup_failed.send(
            sender=None, backup_id=None, kind="database", reason="disk full", phase="backup"
        )
        flush(clock)
        backup_completed.send(sender=None, backup_id=8, kind="database", size=10, duration=1.0)
        flush(clock)
        services.dispatch_due()
    assert [p["notification"] for p in payloads(http_server.requests)] == [
        "BackupFailedNotification",
        "BackupFailureResolvedNotification",
    ]
