"""Conditions that clear send one resolved notice: a resolved error issue, a good verification."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.test import override_settings
from django.utils import timezone

from alerts.models import Alert, Channel
from backups.signals import backup_failed
from errors import services as error_services
from errors.models import Issue
from errors.signals import critical_error_occurred
from tests.fixtures_alerts import T0, answer, flush, make_channel

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("allow_loopback", "memory_broker")]


def notifications(requests: list[dict[str, Any]]) -> list[str]:
    return [json.loads(r["body"])["notification"] for r in requests]


def test_resolving_an_error_issue_in_the_console_resolves_its_alert(sent: Any, admin: Any) -> None:
    project, _ = error_services.create_project("shop")
    now = timezone.now()
    issue = Issue.objects.create(
        project=project,
        fingerprint="f" * 64,
        title="ZeroDivisionError",
        first_seen=now,
        last_seen=now,
        count=3,
    )
    with time_machine.travel(T0, tick=False) as clock:
        critical_error_occurred.send(
            sender=None,
            issue_id=issue.pk,
            project="shop",
            title="ZeroDivisionError",
            severity="critical",
            reason="critical",
            url="",
            count=3,
        )
        flush(clock)
        error_services.resolve_issue(issue, actor=admin)
        flush(clock)
    assert Alert.objects.get(key=f"errors:issue:{issue.pk}").state == Alert.State.RESOLVED
    assert len(notifications(sent)) == 2  # the alert, then exactly one resolved notice


def test_a_good_verification_resolves_a_failed_one(sent: Any, tmp_path: Path) -> None:
    from backups.services import create_backup, verify_backup

    with override_settings(BACKUP_STORAGE_URL=f"file://{tmp_path}"):
        backup = create_backup("db")
        with time_machine.travel(T0, tick=False) as clock:
            backup_failed.send(
                sender=None,
                backup_id=backup.pk,
                kind="db",
                reason="row counts differ",
                phase="verify",
            )
            flush(clock)
            verified = verify_backup(backup.pk)
            flush(clock)
    assert verified.status == "verified"
    assert Alert.objects.get(key="backup:verify").state == Alert.State.RESOLVED
    assert len(notifications(sent)) == 2


def test_a_view_only_operator_never_sees_a_webhook_secret(
    client: Any, operator: Any, admin: Any, http_server: Any
) -> None:
    channel = make_channel(Channel.Type.WEBHOOK, url=http_server(answer(200)), allow_private=True)
    client.force_login(operator)
    page = client.get(f"/admin/alerts/channel/{channel.pk}/change/")
    assert page.status_code == 200
    assert channel.secret.encode() not in page.content
    client.force_login(admin)  # who may change the channel needs the secret to set up the receiver
    assert (
        channel.secret.encode() in client.get(f"/admin/alerts/channel/{channel.pk}/change/").content
    )
