"""Every link in an alert is built on one setting, OPS_PUBLIC_URL."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from django.test import override_settings

from alerts import services
from alerts.models import Channel
from backups.signals import backup_completed, backup_failed
from errors import services as errors_services
from errors.ingest import Envelope
from health.signals import health_check_failed
from maintenance.signals import maintenance_window_started
from metrics.signals import performance_threshold_exceeded
from tests.conftest import ROOT, subprocess_env
from tests.fixtures_alerts import T0, answer, deliver_due, make_channel
from tests.fixtures_errors import make_event

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("allow_loopback", "memory_broker")]

PUBLIC = "https://ops.example.com/console"


@pytest.fixture
def public_url() -> Iterator[str]:
    with override_settings(OPS_PUBLIC_URL=PUBLIC):
        yield PUBLIC


def _alert_links(requests: list[dict[str, Any]]) -> dict[str, str]:
    links = {}
    for request in requests:
        for alert in json.loads(request["body"])["alerts"]:
            links[alert["key"]] = alert["url"]
    return links


def test_every_alert_kind_links_to_the_public_url(public_url, sent, project) -> None:
    proj, _ = project
    with time_machine.travel(T0, tick=False) as clock:
        health_check_failed.send(
            sender=None, component="database", status="fail", output="down", health_check=None
        )
        backup_completed.send(sender=None, backup_id=7, kind="database", size=10, duration=1.0)
        backup_failed.send(
            sender=None, backup_id=8, kind="database", reason="disk full", phase="dump"
        )
        maintenance_window_started.send(sender=None, window_id=3, message="upgrade")
        performance_threshold_exceeded.send(
            sender=None, metric="cpu", host="web-1", level="critical", value=99.0, threshold=90.0
        )
        # The errors app's own rule, over a real ingested event.
        proj.alert_on_new_issue = True
        proj.save()
        event = make_event()
        errors_services.enqueue(
            proj.pk,
            Envelope(headers={}, event=json.dumps(event).encode(), event_id=event["event_id"]),
        )
        errors_services.digest()
        clock.shift(30)
        services.dispatch_due()
        deliver_due()
    links = _alert_links(sent)
    kinds = {key.split(":")[0] for key in links}
    assert kinds == {"health", "backup", "maintenance", "threshold", "errors"}, links
    for key, url in links.items():
        assert url.startswith(PUBLIC + "/"), (key, url)
        assert "localhost" not in url and "127.0.0.1" not in url, (key, url)
    assert links["health:database"] == f"{PUBLIC}/health/database"
    assert (
        links["maintenance:window:3"] == f"{PUBLIC}/admin/maintenance/maintenancewindow/3/change/"
    )


def test_a_channel_test_notification_links_to_the_public_url(public_url, http_server) -> None:
    channel = make_channel(Channel.Type.WEBHOOK, url=http_server(answer(200)), allow_private=True)
    services.send_test_notification(channel)
    (request,) = http_server.requests
    (alert,) = json.loads(request["body"])["alerts"]
    assert alert["url"] == f"{PUBLIC}/admin/alerts/channel/{channel.pk}/change/"


def _public_url_with(**env: str) -> str:
    command = (
        "import django; django.setup(); "
        "from django.conf import settings; print(settings.OPS_PUBLIC_URL)"
    )
    clean = {
        k: v
        for k, v in subprocess_env().items()
        if k not in {"OPS_PUBLIC_URL", "ALERTS_CONSOLE_URL"}
    }
    clean.update(env)
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", command],
        env=clean,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


def test_the_old_alerts_console_url_is_read_only_as_a_deprecated_alias() -> None:
    assert (
        _public_url_with(ALERTS_CONSOLE_URL="https://old.example.com/") == "https://old.example.com"
    )
    both = _public_url_with(
        ALERTS_CONSOLE_URL="https://old.example.com", OPS_PUBLIC_URL="https://new.example.com"
    )
    assert both == "https://new.example.com"
