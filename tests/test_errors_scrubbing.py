"""Secrets in events never reach the database."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import override_settings

from errors import services
from errors.ingest import Envelope
from errors.models import ErrorReport
from errors.scrubbing import Scrubber
from tests.fixtures_errors import make_event, project_fixture  # noqa: F401

pytestmark = pytest.mark.django_db
SECRETS = [
    "hunter2-password",
    "tok_live_abcdef123456",
    "sk_secret_998877",
    "sessionid-value-xyz",
    "Basic dXNlcjpwYXNz",
    "4111 1111 1111 1111",
    "5500-0000-0000-0004",
    "s3cr3t-in-url",
    "apikey-value-777",
    "csrf-token-value",
]


def leaky_event() -> dict:
    event = make_event()
    frame = event["exception"]["values"][0]["stacktrace"]["frames"][0]
    frame["vars"] = {"password": "hunter2-password", "user_token": "tok_live_abcdef123456"}
    event["exception"]["values"][0]["value"] = "charge failed for card 4111 1111 1111 1111"
    event["request"] = {
        "url": "https://shop.example.com/pay",
        "method": "POST",
        "query_string": "page=2&access_token=sk_secret_998877",
        "cookies": {"sessionid": "sessionid-value-xyz"},
        "headers": {
            "Authorization": "Basic dXNlcjpwYXNz",
            "Cookie": "sessionid=sessionid-value-xyz",
            "X-Api-Key": "apikey-value-777",
            "X-CSRFToken": "csrf-token-value",
            "User-Agent": "pytest",
        },
        "data": {"card_number": "5500-0000-0000-0004", "amount": "12.50"},
    }
    event["breadcrumbs"] = {
        "values": [
            {"category": "query", "message": "connect postgres://app:s3cr3t-in-url@db/app"},
            {"category": "http", "data": {"url": "/x", "api_key": "apikey-value-777"}},
        ]
    }
    event["extra"] = {"nested": [["Authorization", "Basic dXNlcjpwYXNz"]]}
    return event


def test_scrubbed_fields_never_reach_the_database(project):
    proj, _ = project
    event = leaky_event()
    services.enqueue(
        proj.pk, Envelope(headers={}, event=json.dumps(event).encode(), event_id=event["event_id"])
    )
    services.digest()
    report = ErrorReport.objects.get()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM errors_errorreport")
        rows = repr(cursor.fetchall())
        cursor.execute("SELECT * FROM errors_issue")
        rows += repr(cursor.fetchall())
    for secret in SECRETS:
        assert secret not in rows, secret
    assert report.request["headers"]["User-Agent"] == "pytest"
    assert report.request["data"]["amount"] == "12.50"
    assert "page=2" in report.request["query_string"]


def test_the_field_list_is_configurable():
    with override_settings(OPS_ERRORS_SCRUB_FIELDS=["customer_ref"]):
        from django.conf import settings

        scrubber = Scrubber(settings.OPS_ERRORS_SCRUB_FIELDS)
    out = scrubber.scrub({"customer_ref": "C-1", "password": "kept-when-not-listed"})
    assert out == {"customer_ref": "[Filtered]", "password": "kept-when-not-listed"}


def test_card_like_numbers_need_a_valid_checksum():
    scrubber = Scrubber(["password"])
    assert scrubber.scrub_string("order 4111111111111111") == "order [Filtered]"
    assert scrubber.scrub_string("order 1234567890123456") == "order 1234567890123456"
