"""The deployed WSGI application (opsconsole/wsgi.py) takes SDK posts past the console's
middleware stack; what must still hold for them, and for everything else, is checked here
through the application gunicorn serves, not Django's test client."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from django.test import override_settings

from errors.models import InboxEvent
from metrics.recorder import recorder, request_field
from metrics.store import get_store
from opsconsole.wsgi import OpsWSGIHandler, application
from tests.fixtures_errors import auth_header, envelope_bytes, make_event

pytestmark = [pytest.mark.django_db(transaction=True)]


def call(
    app: Any, method: str, path: str, body: bytes = b"", **headers: Any
) -> tuple[int, dict[str, str], bytes]:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "HTTP_HOST": "testserver",
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/x-sentry-envelope",
        **headers,
    }
    started: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        started["status"] = int(status.split()[0])
        started["headers"] = dict(response_headers)

    response = application if app is None else app
    result = response(environ, start_response)
    try:
        content = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()  # as a WSGI server does: Django's request_finished
    return started["status"], started["headers"], content


@pytest.mark.usefixtures("metrics_prefix")
def test_an_sdk_post_is_stored_with_a_request_id_and_counted_in_request_metrics(
    project: Any,
) -> None:
    proj, key = project
    event = make_event()
    status, headers, content = call(
        application,
        "POST",
        f"/api/{proj.pk}/envelope/",
        envelope_bytes(event),
        HTTP_X_SENTRY_AUTH=auth_header(key),
        HTTP_X_REQUEST_ID="req-wsgi-123456",
    )
    assert status == 200, content
    assert json.loads(content) == {"id": event["event_id"]}
    assert headers["X-Request-ID"] == "req-wsgi-123456"
    assert "X-Sentry-Rate-Limits" in headers
    assert InboxEvent.objects.filter(event_id=event["event_id"]).exists()
    assert recorder.flush()
    totals = get_store().totals()
    assert totals[request_field("api/<int:project_id>/envelope/", "POST", "2xx", "n")] == 1
    assert totals[request_field("api/<int:project_id>/envelope/", "POST", "2xx", "qn")] >= 1


def test_a_wrong_key_on_the_short_path_is_still_a_403(project: Any) -> None:
    proj, _ = project
    status, _, content = call(
        application,
        "POST",
        f"/api/{proj.pk}/store/",
        json.dumps(make_event()).encode(),
        HTTP_X_SENTRY_AUTH=auth_header("0" * 32),
    )
    assert status == 403
    assert b"unknown project or key" in content


def test_a_bug_on_the_short_path_is_logged_and_answered_500(
    project: Any, monkeypatch: Any, caplog: Any
) -> None:
    from django.core.signals import got_request_exception

    from errors import services

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("inbox exploded")

    monkeypatch.setattr(services, "enqueue", broken)
    signalled: list[Any] = []

    def receiver(sender: Any, request: Any = None, **kwargs: Any) -> None:
        signalled.append(request)

    got_request_exception.connect(receiver)
    proj, key = project
    try:
        with caplog.at_level(logging.ERROR, logger="django.request"):
            status, _, content = call(
                application,
                "POST",
                f"/api/{proj.pk}/envelope/",
                envelope_bytes(make_event()),
                HTTP_X_SENTRY_AUTH=auth_header(key),
            )
    finally:
        got_request_exception.disconnect(receiver)
    assert status == 500
    assert b"inbox exploded" not in content  # no traceback to the client
    # Logged with the exception (our capture turns ERROR records into events), and the
    # signal sentry-sdk captures request exceptions from was sent.
    assert any(r.exc_info and "inbox exploded" in str(r.exc_info[1]) for r in caplog.records)
    assert len(signalled) == 1


def test_other_paths_take_the_whole_middleware_stack() -> None:
    status, headers, _ = call(application, "GET", "/admin/")
    assert status == 302  # session and authentication middleware ran
    assert "/login/" in headers["Location"]
    assert "X-Frame-Options" in headers
    status, _, _ = call(application, "GET", "/api/1/envelopes/")
    assert status == 404


def test_ingest_takes_the_whole_stack_when_api_is_not_exempt_from_maintenance() -> None:
    for exempt in (["/metrics"], ["/metrics", ""]):
        with override_settings(OPS_MAINTENANCE_EXEMPT_PATHS=exempt):
            assert OpsWSGIHandler().ingest_fast_path is False
    assert OpsWSGIHandler().ingest_fast_path is True


def test_an_unknown_host_is_refused_on_the_short_path_too(project: Any) -> None:
    proj, key = project
    status, _, _ = call(
        application,
        "POST",
        f"/api/{proj.pk}/envelope/",
        envelope_bytes(make_event()),
        HTTP_X_SENTRY_AUTH=auth_header(key),
        HTTP_HOST="evil.example.com",
    )
    assert status == 400
    assert not InboxEvent.objects.exists()


class SignalCount:
    """Counts Django's request_started: sent for every request that builds a Django request."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, **kwargs: Any) -> None:
        self.count += 1

    def __enter__(self) -> SignalCount:
        from django.core.signals import request_started

        request_started.connect(self)
        return self

    def __exit__(self, *exc: object) -> None:
        from django.core.signals import request_started

        request_started.disconnect(self)


@pytest.mark.usefixtures("metrics_prefix")
def test_it_refuses_a_project_over_its_quota_from_the_environ_with_the_same_answer(
    project: Any,
) -> None:
    proj, key = project
    proj.rate_limit_per_minute = 1
    proj.save()
    post = f"/api/{proj.pk}/envelope/"
    auth = auth_header(key)
    with override_settings(REDIS_URL=""):
        assert (
            call(application, "POST", post, envelope_bytes(make_event()), HTTP_X_SENTRY_AUTH=auth)[
                0
            ]
            == 200
        )
        status, through_django, _ = call(
            application, "POST", post, envelope_bytes(make_event()), HTTP_X_SENTRY_AUTH=auth
        )
        assert status == 429  # counted, refused, and remembered by this process
        garbage = io.BytesIO(b"\xff" * 50_000)
        with SignalCount() as started:
            raw: dict[str, Any] = {"wsgi.input": garbage, "CONTENT_LENGTH": "50000"}
            status, headers, content = call(
                application, "POST", post, HTTP_X_SENTRY_AUTH=auth,
                HTTP_X_REQUEST_ID="req-early-1234", **raw,
            )  # fmt: skip
    assert status == 429
    assert started.count == 0  # no Django request was built
    assert garbage.tell() == 0  # its body was never read (the server discards it)
    assert "quota exceeded: 1 events per minute" in json.loads(content)["detail"]
    assert headers["X-Request-ID"] == "req-early-1234"
    for name in ("Retry-After", "Access-Control-Allow-Origin", "Content-Type"):
        assert headers[name] == through_django[name]
    assert headers["X-Sentry-Rate-Limits"].endswith(":error;default:project:rate_limit")
    assert recorder.flush()
    totals = get_store().totals()
    assert totals[request_field("api/<int:project_id>/envelope/", "POST", "4xx", "n")] == 2


def test_it_refuses_a_key_it_knows_is_wrong_from_the_environ(project: Any) -> None:
    proj, _ = project
    wrong = {"HTTP_X_SENTRY_AUTH": auth_header("1" * 32)}
    body = json.dumps(make_event()).encode()
    with SignalCount() as started:
        first = call(application, "POST", f"/api/{proj.pk}/store/", body, **wrong)
        again = call(application, "POST", f"/api/{proj.pk}/store/", body, **wrong)
        shapeless = call(
            application, "POST", f"/api/{proj.pk}/store/", body, QUERY_STRING="sentry_key=%00"
        )
    assert first[0] == again[0] == shapeless[0] == 403
    assert first[2] == again[2]
    assert started.count == 1  # only the first asked the database


def test_an_early_refusal_still_validates_the_host(project: Any) -> None:
    proj, _ = project
    wrong = {"HTTP_X_SENTRY_AUTH": auth_header("2" * 32)}
    body = json.dumps(make_event()).encode()
    assert call(application, "POST", f"/api/{proj.pk}/store/", body, **wrong)[0] == 403
    status, _, _ = call(
        application, "POST", f"/api/{proj.pk}/store/", body, HTTP_HOST="evil.example.com", **wrong
    )
    assert status == 400
