"""The stock sentry-sdk client, with a DSN pointing at a live Ops Console, reports and the
events are grouped and stored with their fields."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
import sentry_sdk
from django.test import override_settings

from errors import services
from errors.models import ErrorReport, InboxEvent, Issue
from tests.fixtures_errors import dsn_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def flush_and_digest(count: int = 1) -> None:
    sentry_sdk.flush(timeout=10)
    assert InboxEvent.objects.count() >= count or ErrorReport.objects.count() >= count
    services.digest()


def test_capture_exception_is_grouped_with_its_fields(live_server, project, sdk):
    proj, key = project
    sdk(dsn_for(live_server, key), release="billing@2.0.0", environment="staging")

    def refund(amount: int) -> None:
        password = "hunter2"  # noqa: F841 - a local that must be scrubbed
        raise KeyError(f"no refund for order 18{amount}")

    for amount in (1, 2):
        try:
            refund(amount)
        except KeyError:
            sentry_sdk.capture_exception()
    flush_and_digest(2)
    issue = Issue.objects.get(project=proj)
    assert issue.count == 2
    assert issue.title.startswith("KeyError: ")
    report = issue.reports.order_by("received_at")[0]
    assert report.exception_type == "KeyError"
    assert report.release == "billing@2.0.0"
    assert report.environment == "staging"
    assert report.level == "error"
    assert report.filename.endswith("test_errors_sdk.py")
    assert report.lineno is not None
    frame = report.frames[-1]
    assert frame["function"] == "refund"
    assert "raise KeyError" in frame["context_line"]
    assert frame["vars"]["password"] == "[Filtered]"


def test_capture_message_is_stored_with_its_level(live_server, project, sdk):
    proj, key = project
    sdk(dsn_for(live_server, key))
    sentry_sdk.capture_message("disk 91% full on db-1", level="warning")
    sentry_sdk.capture_message("disk 97% full on db-2", level="warning")
    flush_and_digest(2)
    issue = Issue.objects.get(project=proj)
    assert issue.count == 2, "messages differing only by numbers group together"
    assert issue.severity == "warning"
    assert issue.reports.all()[0].message.startswith("disk 9")


def test_a_fingerprint_override_groups_as_the_client_says(live_server, project, sdk):
    proj, key = project
    sdk(dsn_for(live_server, key))
    for name in ("ValueError", "TypeError"):
        with sentry_sdk.new_scope() as scope:
            scope.fingerprint = ["payment-gateway-down"]
            sentry_sdk.capture_exception(
                ValueError("gateway") if name == "ValueError" else TypeError("other")
            )
    with sentry_sdk.new_scope() as scope:
        scope.fingerprint = ["{{ default }}", "eu-west"]
        sentry_sdk.capture_exception(ValueError("gateway"))
    flush_and_digest(3)
    counts = sorted(Issue.objects.filter(project=proj).values_list("count", flat=True))
    assert counts == [1, 2]


@override_settings(ROOT_URLCONF="tests.errors_testapp.urls")
def test_an_exception_in_a_django_view_is_reported(live_server, project, sdk):
    from sentry_sdk.integrations.django import DjangoIntegration

    proj, key = project
    sdk(dsn_for(live_server, key), integrations=[DjangoIntegration()])
    response = httpx.get(f"{live_server.url}/shop/checkout/?coupon=x", timeout=10)
    assert response.status_code == 500
    flush_and_digest(1)
    report = ErrorReport.objects.get(project=proj)
    assert report.exception_type == "ZeroDivisionError"
    assert report.request["url"].endswith("/shop/checkout/")
    assert report.request["method"] == "GET"
    assert report.issue.culprit == "/shop/checkout/"
    assert report.frames[-1]["function"] == "checkout"


def test_a_failing_celery_task_is_reported(live_server, project, sdk):
    from sentry_sdk.integrations.celery import CeleryIntegration

    from tests.errors_testapp.tasks import charge_card

    proj, key = project
    sdk(dsn_for(live_server, key), integrations=[CeleryIntegration()])
    result = charge_card.apply(args=(77,))
    assert result.failed()
    flush_and_digest(1)
    report = ErrorReport.objects.get(project=proj)
    assert report.exception_type == "RuntimeError"
    assert report.message == "card declined for invoice 77"
    assert report.tags.get("celery_task_id") or "celery" in str(report.contexts)


def test_a_brotli_body_is_accepted(live_server, project, sdk):
    proj, key = project
    client = sdk(dsn_for(live_server, key), _experiments={"transport_compression_algo": "br"})
    assert client.transport._compression_algo == "br"
    sentry_sdk.capture_message("compressed with brotli")
    flush_and_digest(1)
    assert ErrorReport.objects.filter(project=proj, message="compressed with brotli").exists()


def test_a_gzip_body_is_accepted(live_server, project, sdk):
    proj, key = project
    client = sdk(dsn_for(live_server, key), _experiments={"transport_compression_algo": "gzip"})
    assert client.transport._compression_algo == "gzip"
    sentry_sdk.capture_message("compressed with gzip")
    flush_and_digest(1)
    assert ErrorReport.objects.filter(project=proj, message="compressed with gzip").exists()


def test_the_sdk_honours_the_rate_limit_headers(live_server, project, sdk):
    proj, key = project
    proj.rate_limit_per_minute = 1
    proj.save()
    lost: list[Any] = []
    client = sdk(dsn_for(live_server, key))
    original = client.transport.record_lost_event

    def record(reason: str, data_category: Any = None, item: Any = None, **kw: Any) -> None:
        lost.append(reason)
        original(reason, data_category=data_category, item=item, **kw)

    client.transport.record_lost_event = record
    for i in range(5):
        sentry_sdk.capture_message(f"burst {i}")
        sentry_sdk.flush(timeout=5)
    # The first is accepted, the second gets 429 + X-Sentry-Rate-Limits, the SDK then drops
    # the rest itself (ratelimit_backoff) without sending them.
    assert "ratelimit_backoff" in lost
    assert client.transport._disabled_until
    assert InboxEvent.objects.filter(project=proj).count() <= 2


def test_logging_errors_become_events_with_the_logging_integration(live_server, project, sdk):
    from sentry_sdk.integrations.logging import LoggingIntegration

    proj, key = project
    sdk(dsn_for(live_server, key), integrations=[LoggingIntegration(event_level=logging.ERROR)])
    logging.getLogger("billing.jobs").error("nightly export failed for tenant %s", 4411)
    flush_and_digest(1)
    assert ErrorReport.objects.get(project=proj).message == "nightly export failed for tenant 4411"
