"""Sending one notification to one channel: email over SMTP, Slack, signed webhook.

Each sender returns an Outcome instead of raising, so the delivery log always gets a reason.
"""

from __future__ import annotations

import json
import smtplib
import time
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.serializers.json import DjangoJSONEncoder

from opsconsole import http

from . import signing
from .models import Channel, Notification
from .notifications import BaseNotification, notification_for
from .routing import wants

# Enough for an excerpt of an error page; the rest of a reply is never read.
RESPONSE_BYTES = 16 * 1024


@dataclass(frozen=True)
class Outcome:
    ok: bool
    response_code: int | None = None
    error: str = ""
    retryable: bool = False


def _items_for(channel: Channel, notification: Notification) -> BaseNotification:
    items = notification.items
    if not notification.is_test:
        items = [item for item in items if wants(channel, item)]
    return notification_for(notification.kind, items)


def send(channel: Channel, notification: Notification) -> Outcome:
    message = _items_for(channel, notification)
    if not message.items:
        return Outcome(ok=True, error="nothing for this channel after routing")
    if channel.type == Channel.Type.EMAIL:
        return send_email(channel, message)
    if channel.type == Channel.Type.SLACK:
        return post_json(channel, message.slack())
    if channel.type == Channel.Type.WEBHOOK:
        body = message.webhook(
            notification_id=notification.pk,
            sent_at=(notification.sent_at or notification.created_at).isoformat(),
        )
        return post_json(channel, body, sign_with=channel.secret)
    return Outcome(ok=False, error=f"unknown channel type {channel.type!r}")


def send_email(channel: Channel, message: BaseNotification) -> Outcome:
    recipients = channel.recipient_list()
    if not recipients:
        return Outcome(ok=False, error="the channel has no recipients")
    subject, text, html = message.email()
    try:
        connection = get_connection(timeout=settings.ALERTS_SMTP_TIMEOUT)
        email = EmailMultiAlternatives(
            subject, text, settings.DEFAULT_FROM_EMAIL, recipients, connection=connection
        )
        email.attach_alternative(html, "text/html")
        email.send()
    except smtplib.SMTPRecipientsRefused as exc:
        refused = http.excerpt(str(exc))
        return Outcome(ok=False, error=f"the SMTP server refused the recipients: {refused}")
    except smtplib.SMTPResponseException as exc:
        raw = exc.smtp_error
        # 4xx replies are temporary by definition; 5xx will not get better by retrying.
        return Outcome(
            ok=False,
            response_code=exc.smtp_code,
            error=f"SMTP error {exc.smtp_code}: {http.excerpt(raw or b'')}",
            retryable=400 <= exc.smtp_code < 500,
        )
    except (smtplib.SMTPException, OSError) as exc:
        host = getattr(settings, "EMAIL_HOST", "")
        port = getattr(settings, "EMAIL_PORT", "")
        reason = str(exc) or type(exc).__name__
        return Outcome(
            ok=False, error=f"cannot send through SMTP {host}:{port}: {reason}", retryable=True
        )
    return Outcome(ok=True, response_code=250)


def post_json(channel: Channel, payload: dict[str, Any], *, sign_with: str = "") -> Outcome:
    body = json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json"}
    if sign_with:
        headers[signing.HEADER] = signing.sign(sign_with, body, int(time.time()))
    timeout = settings.ALERTS_HTTP_TIMEOUT
    try:
        reply = http.request(
            "POST",
            channel.url,
            timeout=timeout,
            allow_private=channel.allow_private,
            max_bytes=RESPONSE_BYTES,
            content=body,
            headers=headers,
        )
    except http.BlockedDestination as exc:
        return Outcome(ok=False, error=f"refused destination: {exc}")
    except httpx.TimeoutException:
        return Outcome(ok=False, error=f"timed out after {timeout:g} s", retryable=True)
    except httpx.HTTPError as exc:
        # Never echo the URL: Slack webhook URLs are credentials.
        return Outcome(
            ok=False, error=f"{type(exc).__name__}: {http.excerpt(str(exc))}", retryable=True
        )
    code = reply.status_code
    if 200 <= code < 300:
        return Outcome(ok=True, response_code=code)
    # Only a short, inert excerpt: the body is the receiver's, and it is shown in the console.
    said = reply.excerpt()
    return Outcome(
        ok=False,
        response_code=code,
        error=f"HTTP {code}: {said}" if said else f"HTTP {code}",
        retryable=code >= 500 or code in (408, 429),
    )
