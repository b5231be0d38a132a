"""Ops Console's own errors are captured through sentry-sdk into the "Ops Console" project."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sentry_sdk
from django.conf import settings
from django.db import DatabaseError
from django.test import override_settings

from errors import capture, services
from errors.models import ErrorReport, InboxEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def own(tmp_path: Any) -> Iterator[capture.LocalTransport]:
    with override_settings(OPS_VAR_DIR=tmp_path):
        transport = capture.init(forward_dsn="", environment="test")
        yield transport
        sentry_sdk.get_client().close(timeout=2)
        sentry_sdk.init()


def digested(transport: capture.LocalTransport) -> list[ErrorReport]:
    sentry_sdk.flush(timeout=5)
    transport.flush(5)
    services.digest()
    return list(ErrorReport.objects.filter(project__name=settings.OPS_ERRORS_OWN_PROJECT))


def test_the_test_settings_do_not_capture_or_send_anywhere():
    assert settings.OPS_ERRORS_CAPTURE is False
    assert not settings.SENTRY_DSN


@override_settings(ROOT_URLCONF="tests.errors_testapp.urls")
def test_a_request_exception_becomes_an_error_report_with_the_request_id(own, live_server):
    response = httpx.get(
        f"{live_server.url}/shop/checkout/", headers={"X-Request-ID": "req-abc-12345"}, timeout=10
    )
    assert response.status_code == 500
    (report,) = digested(own)
    assert report.exception_type == "ZeroDivisionError"
    assert report.tags["request_id"] == "req-abc-12345"
    assert report.request["url"].endswith("/shop/checkout/")


@override_settings(ROOT_URLCONF="tests.errors_testapp.urls")
def test_a_request_error_report_has_the_route_and_no_credentials(own, live_server):
    response = httpx.get(
        f"{live_server.url}/shop/checkout/?coupon=FALL&api_token=s3cret-query",
        headers={
            "Authorization": "Bearer s3cret-token",
            "Cookie": "sessionid=s3cret-session",
            "X-Forwarded-For": "203.0.113.9",
            "X-Api-Key": "s3cret-api-key",
            "User-Agent": "spec-client/1.0",
        },
        timeout=10,
    )
    assert response.status_code == 500
    (report,) = digested(own)
    assert report.request["method"] == "GET"
    assert report.request["query_string"].startswith("coupon=FALL&api_token=")
    headers = report.request["headers"]
    assert headers["User-Agent"] == "spec-client/1.0"
    assert headers["Authorization"] == headers["Cookie"] == "[Filtered]"
    assert headers["X-Forwarded-For"] == headers["X-Api-Key"] == "[Filtered]"
    stored = json.dumps([report.request, report.tags, report.contexts, report.breadcrumbs])
    assert "s3cret" not in stored and "203.0.113.9" not in stored
    assert report.issue.culprit == "shop/checkout/"


@override_settings(ROOT_URLCONF="tests.errors_testapp.urls")
def test_one_requests_breadcrumbs_never_reach_another_requests_report(own, caplog):
    from opsconsole.wsgi import OpsWSGIHandler
    from tests.test_errors_wsgi import call

    caplog.set_level(logging.INFO, logger="shop.orders")  # breadcrumbs are INFO records
    app = OpsWSGIHandler()  # the application gunicorn serves
    assert call(app, "GET", "/shop/orders/41/")[0] == 200
    status, _, _ = call(app, "GET", "/shop/checkout/")
    assert status == 500
    assert call(app, "GET", "/shop/orders/42/")[0] == 200
    status, _, _ = call(app, "GET", "/shop/checkout/")
    assert status == 500
    reports = digested(own)
    assert len(reports) == 2
    for report in reports:
        crumbs = json.dumps(report.breadcrumbs)
        assert "checking out the cart" in crumbs  # its own request's
        assert "looked at order" not in crumbs, crumbs


def test_a_failing_celery_task_becomes_an_error_report(own):
    from tests.errors_testapp.tasks import charge_card

    assert charge_card.apply(args=(5,)).failed()
    (report,) = digested(own)
    assert report.message == "card declined for invoice 5"


def test_a_logged_error_becomes_an_error_report(own):
    logging.getLogger("backups.jobs").error("upload to s3 failed: %s", "timeout")
    logging.getLogger("backups.jobs").warning("just a warning")
    (report,) = digested(own)
    assert report.message == "upload to s3 failed: timeout"


def test_an_error_raised_in_a_rolled_back_transaction_is_kept(own):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        try:
            raise RuntimeError("inside a transaction")
        except RuntimeError:
            sentry_sdk.capture_exception()
            raise
    (report,) = digested(own)
    assert report.message == "inside a transaction"


def test_when_ingest_fails_the_event_is_spooled_not_lost_and_not_recaptured(own, monkeypatch):
    real_enqueue = services.enqueue

    def failing_enqueue(project_id: int, envelope: Any, **kwargs: Any) -> None:
        logging.getLogger("errors.somewhere").error("ingest is broken")  # would recurse
        raise DatabaseError("database is down")

    monkeypatch.setattr(services, "enqueue", failing_enqueue)
    sentry_sdk.capture_message("first error while the database is down", level="error")
    sentry_sdk.flush(timeout=5)
    own.flush(5)
    spooled = list(capture.spool_dir().glob("*.envelope"))
    # The original event, plus the error logged while ingesting it (spooled, not re-ingested).
    assert len(spooled) == 2
    assert not InboxEvent.objects.exists()

    monkeypatch.setattr(services, "enqueue", real_enqueue)
    assert capture.drain_spool() == 2
    messages = {r.message for r in digested(own)}
    assert messages == {"first error while the database is down", "ingest is broken"}
    assert not list(capture.spool_dir().glob("*.envelope"))


def test_sentry_dsn_also_forwards_to_an_external_sentry(http_server, tmp_path):
    def handle(handler: Any) -> None:
        handler.send_response(200)
        handler.end_headers()

    url = http_server(handle)
    host = url.split("://", 1)[1]
    with override_settings(OPS_VAR_DIR=tmp_path):
        transport = capture.init(forward_dsn=f"http://fwdkey@{host}/9", environment="test")
        try:
            sentry_sdk.capture_message("forward me", level="error")
            sentry_sdk.flush(timeout=5)
            assert [r["path"] for r in http_server.requests] == ["/api/9/envelope/"]
            assert "sentry_key=fwdkey" in http_server.requests[0]["headers"]["X-Sentry-Auth"]
            (report,) = digested(transport)
            assert report.message == "forward me"
        finally:
            sentry_sdk.get_client().close(timeout=2)
            sentry_sdk.init()


def test_request_data_filters_credentials_before_anything_leaves_the_process(rf):
    # What is forwarded to an external Sentry never passes through our server-side scrub.
    request = rf.get(
        "/shop/checkout/",
        {"coupon": "FALL"},
        HTTP_AUTHORIZATION="Bearer s3cret",
        HTTP_COOKIE="sessionid=s3cret",
        HTTP_X_CSRFTOKEN="s3cret",
        HTTP_X_REAL_IP="203.0.113.9",
        HTTP_USER_AGENT="spec-client/1.0",
    )
    data = capture.request_data(request)
    assert data["method"] == "GET"
    assert data["url"] == "http://testserver/shop/checkout/"
    assert data["query_string"] == "coupon=FALL"
    assert data["headers"]["User-Agent"] == "spec-client/1.0"
    for name in ("Authorization", "Cookie", "X-Csrftoken", "X-Real-Ip"):
        assert data["headers"][name] == "[Filtered]", name
    assert "s3cret" not in json.dumps(data) and "203.0.113.9" not in json.dumps(data)
    assert "data" not in data  # never the body


@override_settings(OPS_ERRORS_CAPTURE_SECURITY_PER_MINUTE=2, OPS_ERRORS_CAPTURE_PER_MINUTE=60)
def test_it_stores_only_a_few_events_for_a_thousand_bad_host_headers(tmp_path):
    from opsconsole.wsgi import OpsWSGIHandler
    from tests.test_errors_wsgi import call

    with override_settings(OPS_VAR_DIR=tmp_path):
        transport = capture.init(forward_dsn="", environment="test")
        try:
            app = OpsWSGIHandler()
            statuses = {
                call(app, "GET", "/", HTTP_HOST=f"attacker-{n}.example")[0] for n in range(1000)
            }
            assert statuses == {400}
            reports = digested(transport)
        finally:
            sentry_sdk.get_client().close(timeout=2)
            sentry_sdk.init()
    assert 1 <= len(reports) <= 2  # sampled: seen, not stored a thousand times
    assert all("attacker-" in (r.message or "") for r in reports)


@override_settings(OPS_ERRORS_CAPTURE_PER_MINUTE=5)
def test_it_caps_a_burst_of_our_own_errors(tmp_path):
    with override_settings(OPS_VAR_DIR=tmp_path):
        transport = capture.init(forward_dsn="", environment="test")
        try:
            for n in range(50):
                sentry_sdk.capture_message(f"burst error {n}", level="error")
            reports = digested(transport)
        finally:
            sentry_sdk.get_client().close(timeout=2)
            sentry_sdk.init()
    # The first five of the burst; the bucket refills at 5 a minute, so none more yet.
    assert sorted(r.message for r in reports) == [f"burst error {n}" for n in range(5)]


def test_it_never_lets_the_spool_pass_its_cap_and_keeps_it_private(tmp_path):
    envelope = b'{"event_id":"0"}\n' + b"x" * 1000
    old_umask = os.umask(0)  # the most permissive umask: the spool must still be private
    try:
        with override_settings(
            VAR_DIR=tmp_path, OPS_ERRORS_SPOOL_MAX_FILES=5, OPS_ERRORS_SPOOL_MAX_BYTES=10**6
        ):
            kept = [capture.spool(envelope + str(n).encode()) for n in range(20)]
            files = list(capture.spool_dir().glob("*.envelope"))
            assert kept == [True] * 5 + [False] * 15  # the oldest are kept
            assert len(files) == 5
            assert sorted(f.read_bytes()[-1:] for f in files) == [b"0", b"1", b"2", b"3", b"4"]
            assert stat.S_IMODE(capture.spool_dir().stat().st_mode) == 0o700
            assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}
            for f in files:
                f.unlink()
        with override_settings(
            VAR_DIR=tmp_path, OPS_ERRORS_SPOOL_MAX_FILES=1000, OPS_ERRORS_SPOOL_MAX_BYTES=3500
        ):
            for _ in range(20):
                capture.spool(envelope)
            sizes = [f.stat().st_size for f in capture.spool_dir().glob("*.envelope")]
            assert len(sizes) == 3 and sum(sizes) <= 3500
    finally:
        os.umask(old_umask)


def test_request_data_filters_secret_query_parameters_and_urls_in_headers(rf):
    request = rf.get(
        "/shop/checkout/?coupon=FALL&key=s3cret-key&dsn=s3cret-dsn&passphrase=s3cret-pass",
        HTTP_REFERER="https://shop.example.com/cart?page=2&token=s3cret-referer",
    )
    data = capture.request_data(request)
    assert data["query_string"] == (
        "coupon=FALL&key=[Filtered]&dsn=[Filtered]&passphrase=[Filtered]"
    )
    assert data["headers"]["Referer"] == "https://shop.example.com/cart?page=2&token=[Filtered]"
    assert "s3cret" not in json.dumps(data)


def forwarded_events(requests: list[dict[str, Any]]) -> str:
    """The bodies sent to the external Sentry, decompressed."""
    import gzip

    import brotli

    bodies = []
    for request in requests:
        body, encoding = request["body"], request["headers"].get("Content-Encoding", "")
        bodies.append(
            brotli.decompress(body) if encoding == "br" else gzip.decompress(body)
            if encoding == "gzip" else body
        )  # fmt: skip
    return b"\n".join(bodies).decode()


@override_settings(ROOT_URLCONF="tests.errors_testapp.urls")
def test_what_is_forwarded_to_an_external_sentry_is_scrubbed_query_strings_included(
    http_server, tmp_path, caplog
):
    from opsconsole.wsgi import OpsWSGIHandler
    from tests.test_errors_wsgi import call

    def handle(handler: Any) -> None:
        handler.send_response(200)
        handler.end_headers()

    url = http_server(handle)
    caplog.set_level(logging.INFO, logger="shop.orders")
    with override_settings(OPS_VAR_DIR=tmp_path):
        transport = capture.init(
            forward_dsn=f"http://fwdkey@{url.split('://', 1)[1]}/9", environment="test"
        )
        try:
            status, _, _ = call(
                OpsWSGIHandler(),
                "GET",
                "/shop/checkout/",
                QUERY_STRING="coupon=FALL&key=s3cret-key&secret=s3cret-secret",
                HTTP_REFERER="https://shop.example.com/cart?token=s3cret-referer",
            )
            assert status == 500
            logging.getLogger("shop.orders").info("callback /hook?dsn=s3cret-crumb&page=1")
            with sentry_sdk.new_scope() as scope:
                scope.set_extra("token", "s3cret-extra")
                scope.set_context("vendor", {"key": "s3cret-context"})
                sentry_sdk.capture_message("payment provider said no", level="error")
            sentry_sdk.flush(timeout=5)
            forwarded = forwarded_events(http_server.requests)
            reports = digested(transport)
        finally:
            sentry_sdk.get_client().close(timeout=2)
            sentry_sdk.init()
    assert "ZeroDivisionError" in forwarded and "payment provider said no" in forwarded
    assert "coupon=FALL" in forwarded and "page=1" in forwarded
    assert "s3cret" not in forwarded
    assert len(reports) == 2
    stored = json.dumps([[r.request, r.breadcrumbs, r.contexts, r.frames] for r in reports])
    assert "s3cret" not in stored


def raise_with_a_secret_local() -> None:
    # Built at run time: the source lines around a frame are sent too, locals or not.
    card_number_local = "-".join(["4000", "0566", "5566", "5556"])  # noqa: F841
    account_hint = "-".join(["looked", "up", "account", "77"])  # noqa: F841
    raise RuntimeError("charge failed")


@pytest.mark.parametrize("locals_on", [False, True])
def test_our_own_events_carry_frame_locals_only_when_the_operator_turns_them_on(
    tmp_path, locals_on
):
    with override_settings(OPS_VAR_DIR=tmp_path, OPS_ERRORS_CAPTURE_LOCALS=locals_on):
        transport = capture.init(forward_dsn="", environment="test")
        try:
            try:
                raise_with_a_secret_local()
            except RuntimeError:
                sentry_sdk.capture_exception()
            (report,) = digested(transport)
        finally:
            sentry_sdk.get_client().close(timeout=2)
            sentry_sdk.init()
    frames = json.dumps(report.frames)
    assert "raise_with_a_secret_local" in frames
    if locals_on:
        assert "looked-up-account-77" in frames  # shown, and the card number still scrubbed
        assert "4000-0566-5566-5556" not in frames
    else:
        assert '"vars"' not in frames and "looked-up-account-77" not in frames
