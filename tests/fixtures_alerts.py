"""Fixtures for the alerts tests: a real SMTP server, channel factories, a delivery driver."""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.test import override_settings

from alerts.delivery import attempt_delivery
from alerts.models import Channel, Delivery, Severity
from alerts.services import dispatch_due

T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
LOOPBACK = ["127.0.0.0/8"]


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Any] = []
        self.lock = threading.Lock()
        self.port = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.envelopes.append(envelope)
            self.messages.append(message)
        return "250 Message accepted for delivery"


class EphemeralSMTPController(Controller):
    """aiosmtpd on 127.0.0.1, port 0: learn the port the OS picked before the self-check."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        super()._trigger_server()


@contextmanager
def smtp_listening(handler: Any) -> Iterator[int]:
    """A real SMTP server in the test process answering with `handler`; Django's SMTP backend
    points at it. Yields its port."""
    controller = EphemeralSMTPController(handler, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        with override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=controller.port,
            EMAIL_USE_TLS=False,
            EMAIL_USE_SSL=False,
            EMAIL_HOST_USER="",
            EMAIL_HOST_PASSWORD="",
        ):
            yield controller.port
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[_Inbox]:
    """A real SMTP server that keeps every message it is sent."""
    inbox = _Inbox()
    with smtp_listening(inbox) as port:
        inbox.port = port
        yield inbox


@pytest.fixture
def allow_loopback() -> Iterator[None]:
    with override_settings(OPS_HTTP_ALLOW_NETWORKS=LOOPBACK):
        yield


def make_channel(type: str, **fields: Any) -> Channel:
    defaults: dict[str, Any] = {
        "name": f"{type}-{Channel.objects.count() + 1}",
        "type": type,
        "min_severity": Severity.INFO,
    }
    if type == Channel.Type.EMAIL:
        defaults["recipients"] = "oncall@example.com, lead@example.com"
    defaults.update(fields)
    channel = Channel(**defaults)
    channel.full_clean()
    channel.save()
    return channel


def deliver_due(now: datetime | None = None) -> list[Delivery]:
    """Do what the workers do: attempt every delivery that is due."""
    done = []
    for pk in Delivery.objects.order_by("pk").values_list("pk", flat=True):
        delivery = attempt_delivery(pk, now=now)
        if delivery is not None:
            done.append(delivery)
    return done


def flush(clock: Any, seconds: float = 30) -> None:
    """Let the group wait pass on the test's clock, then dispatch and deliver what is due."""
    clock.shift(seconds)
    dispatch_due()
    deliver_due()


def answer(status: int = 200, body: bytes = b"ok") -> Any:
    def handle(handler: Any) -> None:
        handler.send_response(status)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return handle


@pytest.fixture
def sent(http_server: Any) -> list[dict[str, Any]]:
    """A webhook channel to a loopback receiver; the requests it received, in order."""
    make_channel(Channel.Type.WEBHOOK, url=http_server(answer(200)), allow_private=True)
    return http_server.requests


@pytest.fixture
def memory_broker() -> Iterator[None]:
    """Publish to an in-memory broker: tests that drive deliveries themselves leave no
    messages behind in a shared Redis."""
    from opsconsole.celery import app
    from tests.conftest import reset_celery_connections

    old = app.conf.broker_url
    app.conf.update(broker_url="memory://")
    reset_celery_connections(app)
    try:
        yield
    finally:
        app.conf.update(broker_url=old)
        reset_celery_connections(app)
