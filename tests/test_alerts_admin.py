"""The alerts console, the sendalert command and retention."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.urls import reverse

from alerts import services
from alerts.models import Alert, Channel, Delivery, Kind, Notification, Severity, Silence
from opsconsole.models import SystemLog
from tests.conftest import ROOT, subprocess_env
from tests.fixtures_alerts import T0, answer, deliver_due, make_channel

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("allow_loopback", "memory_broker")]


@pytest.mark.parametrize("model", ["alert", "channel", "silence", "delivery", "notification"])
def test_an_operator_sees_every_alerts_page(client, operator, model) -> None:
    services.fire("health:db", kind=Kind.HEALTH, summary="down")
    client.force_login(operator)
    assert client.get(reverse(f"admin:alerts_{model}_changelist")).status_code == 200


def test_the_alert_list_filters_firing_suppressed_and_recent(client, admin) -> None:
    services.fire("health:db", kind=Kind.HEALTH, summary="down")
    services.fire("health:cache", kind=Kind.HEALTH, summary="down")
    services.resolve("health:cache")
    client.force_login(admin)
    url = reverse("admin:alerts_alert_changelist")
    firing = client.get(url, {"show": "firing"}).content.decode()
    recent = client.get(url, {"show": "recent"}).content.decode()
    assert "health:db" in firing and "health:cache" not in firing
    assert "health:cache" in recent and "health:db" not in recent


def test_suppressed_alerts_are_listed_with_their_reason(client, admin) -> None:
    Silence.objects.create(
        pattern="health:*",
        ends_at=T0 + timedelta(days=3650),
        reason="moving racks",
        created_by=admin,
    )
    services.fire("health:db", kind=Kind.HEALTH, summary="down")
    client.force_login(admin)
    page = client.get(reverse("admin:alerts_alert_changelist"), {"show": "suppressed"})
    assert "health:db" in page.content.decode()
    assert "moving racks" in page.content.decode()


def test_an_outsider_is_sent_to_the_login_page(client, outsider) -> None:
    client.force_login(outsider)
    response = client.get(reverse("admin:alerts_alert_changelist"))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_an_invalid_channel_url_is_a_form_error_not_a_500(client, admin) -> None:
    client.force_login(admin)
    response = client.post(
        reverse("admin:alerts_channel_add"),
        {
            "name": "pager",
            "type": "webhook",
            "enabled": "on",
            "min_severity": "20",
            "url": "http://169.254.169.254/latest/meta-data",
            "secret": "s" * 32,
            "send_resolved": "on",
        },
    )
    assert response.status_code == 200
    assert "private or reserved" in response.content.decode()
    assert not Channel.objects.exists()


def test_a_silence_records_its_creator(client, admin) -> None:
    client.force_login(admin)
    response = client.post(
        reverse("admin:alerts_silence_add"),
        {
            "pattern": "health:*",
            "starts_at_0": "2026-03-02",
            "starts_at_1": "09:00:00",
            "ends_at_0": "2026-03-02",
            "ends_at_1": "10:00:00",
            "reason": "db upgrade",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Silence.objects.get().created_by == admin


def test_a_silence_that_ends_before_it_starts_is_refused(client, admin) -> None:
    client.force_login(admin)
    response = client.post(
        reverse("admin:alerts_silence_add"),
        {
            "pattern": "health:*",
            "starts_at_0": "2026-03-02",
            "starts_at_1": "10:00:00",
            "ends_at_0": "2026-03-02",
            "ends_at_1": "09:00:00",
            "reason": "oops",
        },
    )
    assert response.status_code == 200
    assert "must end after it starts" in response.content.decode()


def test_the_test_notification_action_delivers_and_is_audited(client, admin, http_server) -> None:
    channel = make_channel(Channel.Type.WEBHOOK, url=http_server(answer(200)), allow_private=True)
    client.force_login(admin)
    response = client.post(
        reverse("admin:alerts_channel_changelist"),
        {"action": "send_test_notification", "_selected_action": [channel.pk]},
        follow=True,
    )
    assert "test notification delivered" in response.content.decode()
    assert len(http_server.requests) == 1
    assert Delivery.objects.get().status == Delivery.Status.DELIVERED
    entry = SystemLog.objects.get(action="alerts.test_notification")
    assert entry.actor == admin and entry.result == "success"


def test_a_failing_test_notification_shows_the_reason(client, admin, http_server) -> None:
    channel = make_channel(
        Channel.Type.SLACK, url=http_server(answer(404, b"no_service")), allow_private=True
    )
    client.force_login(admin)
    response = client.post(
        reverse("admin:alerts_channel_changelist"),
        {"action": "send_test_notification", "_selected_action": [channel.pk]},
        follow=True,
    )
    assert "not delivered (HTTP 404: no_service)" in response.content.decode()
    assert SystemLog.objects.get(action="alerts.test_notification").result == "failure"


def test_an_operator_without_change_permission_cannot_send_a_test(
    client, operator, http_server
) -> None:
    channel = make_channel(Channel.Type.WEBHOOK, url=http_server(answer(200)), allow_private=True)
    client.force_login(operator)
    client.post(
        reverse("admin:alerts_channel_changelist"),
        {"action": "send_test_notification", "_selected_action": [channel.pk]},
    )
    assert http_server.requests == []
    assert not SystemLog.objects.filter(action="alerts.test_notification").exists()


def test_sendalert_fires_an_alert_and_is_audited(capsys) -> None:
    call_command(
        "sendalert", "--severity", "critical", "--key", "deploy:web", "--message", "deploy failed"
    )
    alert = Alert.objects.get()
    assert (alert.key, alert.severity, alert.summary) == (
        "deploy:web",
        Severity.CRITICAL,
        "deploy failed",
    )
    assert "Alert deploy:web (critical) recorded" in capsys.readouterr().out
    assert SystemLog.objects.get(action="alerts.sendalert").actor_name.startswith("cli")
    call_command("sendalert", "--key", "deploy:web", "--resolve")
    assert Alert.objects.get().state == Alert.State.RESOLVED


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--key", "deploy:web", "--message", "x", "--severity", "loud"], "unknown severity"),
        (["--severity", "info", "--message", "x"], "--key is required"),
        (["--severity", "info", "--key", "bad key!", "--message", "x"], "is not a key"),
        (["--severity", "info", "--key", "deploy:web"], "--message is required"),
    ],
)
def test_sendalert_refuses_bad_input_with_one_clear_line(args, message) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("sendalert", *args)


def test_sendalert_exits_non_zero_with_one_line_from_a_shell() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "sendalert",
            "--severity",
            "loud",
            "--key",
            "a:b",
            "--message",
            "x",
        ],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "CommandError: --severity: unknown severity 'loud': use one of info, warning, critical"
    ]


def test_cleanup_removes_old_resolved_alerts_and_delivery_logs(http_server) -> None:
    make_channel(Channel.Type.WEBHOOK, url=http_server(answer(200)), allow_private=True)
    with time_machine.travel(T0, tick=False) as clock:
        services.fire("health:old", kind=Kind.HEALTH, summary="old")
        services.fire("health:still", kind=Kind.HEALTH, summary="still firing")
        clock.shift(30)
        services.dispatch_due()
        deliver_due()
        services.resolve("health:old")
        clock.shift(30)
        services.dispatch_due()
        deliver_due()
        clock.shift(timedelta(days=29))
        assert services.cleanup() == {"Alert": 0, "Delivery": 0, "Notification": 0}
        clock.shift(timedelta(days=2))
        counts: dict[str, Any] = services.cleanup()
    assert counts == {"Alert": 1, "Delivery": 2, "Notification": 2}
    assert list(Alert.objects.values_list("key", flat=True)) == ["health:still"]
    assert not Notification.objects.exists()


def test_prometheus_collect_counts_firing_alerts_and_deliveries() -> None:
    from alerts.prometheus import collect

    services.fire("health:db", kind=Kind.HEALTH, severity=Severity.CRITICAL, summary="down")
    families = {f.name: f for f in collect()}
    samples = {
        tuple(s.labels.values()): s.value for s in families["opsconsole_alerts_firing"].samples
    }
    assert samples[("critical", "false")] == 1
    assert samples[("warning", "false")] == 0
    delivery_samples = families["opsconsole_alert_deliveries"].samples
    assert {s.labels["status"] for s in delivery_samples} >= {"delivered", "failed"}


def test_a_notification_page_shows_its_deliveries(client, operator, http_server) -> None:
    make_channel(
        Channel.Type.WEBHOOK, name="hook", url=http_server(answer(503)), allow_private=True
    )
    with time_machine.travel(T0, tick=False) as clock:
        services.fire("health:db", kind=Kind.HEALTH, summary="down")
        clock.shift(30)
        services.dispatch_due()
        deliver_due()
    client.force_login(operator)
    notification = Notification.objects.get()
    page = client.get(reverse("admin:alerts_notification_change", args=[notification.pk]))
    assert page.status_code == 200
    assert "HTTP 503" in page.content.decode()
    log = client.get(reverse("admin:alerts_delivery_changelist"))
    assert "waiting to retry" in log.content.decode()


@pytest.fixture
def channel_editor(db: Any) -> Any:
    """Staff who may add and change channels, but no superuser."""
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user("erin", "erin@example.com", "erin-password", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="alerts",
            codename__in=["view_channel", "add_channel", "change_channel"],
        )
    )
    return user


CHANNEL_TO_A_PRIVATE_ADDRESS = {
    "name": "internal",
    "type": "webhook",
    "enabled": "on",
    "min_severity": "20",
    "url": "http://10.0.0.7/hook",
    "secret": "s" * 32,
    "allow_private": "on",
    "send_resolved": "on",
}


def test_only_a_superuser_may_let_a_channel_reach_private_addresses(
    client, admin, channel_editor
) -> None:
    client.force_login(channel_editor)
    response = client.post(reverse("admin:alerts_channel_add"), CHANNEL_TO_A_PRIVATE_ADDRESS)
    # The switch is read-only for them: the posted "on" is ignored, so the URL is refused.
    assert response.status_code == 200
    assert "private or reserved" in response.content.decode()
    assert not Channel.objects.exists()

    client.force_login(admin)
    response = client.post(reverse("admin:alerts_channel_add"), CHANNEL_TO_A_PRIVATE_ADDRESS)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Channel.objects.get().allow_private


def test_a_view_only_operator_never_sees_a_channels_url_or_secret(client, operator) -> None:
    channel = Channel.objects.create(
        name="slack",
        type="slack",
        url="https://hooks.slack.com/services/T000/B000/very-secret-token",
        secret="webhook-signing-secret",
    )
    client.force_login(operator)
    page = client.get(reverse("admin:alerts_channel_change", args=[channel.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "very-secret-token" not in body
    assert "webhook-signing-secret" not in body
