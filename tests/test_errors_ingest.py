"""The ingest endpoints speak Sentry's protocol: auth, encodings, caps, malformed input."""

from __future__ import annotations

import json
import uuid
import zlib
from typing import Any

import brotli
import pytest
from django.test import override_settings

from errors.models import ErrorReport, InboxEvent
from errors.services import digest
from tests.fixtures_errors import envelope_bytes, gz, make_event, post_envelope

pytestmark = pytest.mark.django_db


def test_it_accepts_an_envelope_and_answers_its_event_id(client, project):
    proj, key = project
    event = make_event()
    response = post_envelope(client, proj.pk, gz(envelope_bytes(event)), key=key, encoding="gzip")
    assert response.status_code == 200
    assert response.json() == {"id": event["event_id"]}
    assert InboxEvent.objects.filter(project=proj, event_id=event["event_id"]).exists()


@pytest.mark.parametrize(
    "encode,encoding",
    [
        (gz, "gzip"),
        (zlib.compress, "deflate"),
        (None, "deflate-raw"),
        (brotli.compress, "br"),
        (lambda d: d, ""),
    ],
)
def test_it_decodes_every_content_encoding(client, project, encode, encoding):
    proj, key = project
    event = make_event()
    data = envelope_bytes(event)
    if encoding == "deflate-raw":
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        body, encoding = c.compress(data) + c.flush(), "deflate"
    else:
        body = encode(data)
    response = post_envelope(client, proj.pk, body, key=key, encoding=encoding)
    assert response.status_code == 200, response.content
    assert InboxEvent.objects.filter(event_id=event["event_id"]).exists()


def test_it_authenticates_by_query_string(client, project):
    proj, key = project
    event = make_event()
    response = post_envelope(
        client,
        proj.pk,
        envelope_bytes(event),
        query=f"?sentry_key={key.public_key}&sentry_version=7",
    )
    assert response.status_code == 200


def test_it_authenticates_by_the_envelope_dsn_header(client, project):
    proj, key = project
    event = make_event()
    header = {"event_id": event["event_id"], "dsn": f"http://{key.public_key}@testserver/{proj.pk}"}
    payload = json.dumps(event).encode()
    body = b"\n".join([json.dumps(header).encode(), b'{"type":"event"}', payload])
    assert post_envelope(client, proj.pk, body).status_code == 200


def test_it_refuses_a_wrong_key_with_403(client, project):
    proj, _ = project
    response = post_envelope(client, proj.pk, envelope_bytes(make_event()), key="f" * 32)
    assert response.status_code == 403
    assert "unknown project or key" in response.json()["detail"]


def test_it_refuses_a_key_of_another_project_with_403(client, project):
    from errors.services import create_project

    proj, key = project
    other, _ = create_project("other")
    assert post_envelope(client, other.pk, envelope_bytes(make_event()), key=key).status_code == 403


def test_it_refuses_a_revoked_key(client, project):
    from errors.services import revoke_key

    proj, key = project
    revoke_key(key)
    assert post_envelope(client, proj.pk, envelope_bytes(make_event()), key=key).status_code == 403


def test_it_refuses_a_request_without_auth(client, project):
    proj, _ = project
    response = post_envelope(client, proj.pk, envelope_bytes(make_event()))
    assert response.status_code == 403
    assert "sentry_key" in response.json()["detail"]


@override_settings(OPS_ERRORS_MAX_ENVELOPE_BYTES=2048)
def test_it_refuses_an_oversized_body_with_413(client, project):
    proj, key = project
    event = make_event(extra={"blob": "x" * 5000})
    response = post_envelope(client, proj.pk, envelope_bytes(event), key=key)
    assert response.status_code == 413


@override_settings(OPS_ERRORS_MAX_DECOMPRESSED_BYTES=100_000)
def test_it_refuses_a_decompression_bomb_with_413(client, project):
    proj, key = project
    # A well-formed envelope whose attachment inflates past the cap (a body of bare zeros is
    # refused earlier, as an envelope header longer than OPS_ERRORS_MAX_HEADER_BYTES).
    inflated = b'{}\n{"type":"attachment"}\n' + b"\0" * 10_000_000
    bomb = gz(inflated)
    assert len(bomb) < 20_000
    response = post_envelope(client, proj.pk, bomb, key=key, encoding="gzip")
    assert response.status_code == 413
    bomb = brotli.compress(inflated)
    assert post_envelope(client, proj.pk, bomb, key=key, encoding="br").status_code == 413


@override_settings(OPS_ERRORS_MAX_EVENT_BYTES=4096)
def test_it_refuses_an_oversized_event_item_with_413(client, project):
    proj, key = project
    event = make_event(extra={"blob": "x" * 5000})
    assert post_envelope(client, proj.pk, envelope_bytes(event), key=key).status_code == 413


@pytest.mark.parametrize(
    "body,reason",
    [
        (b"not json\n", "envelope header is not valid JSON"),
        (b"[1]\n", "envelope header is not a JSON object"),
        (b'{}\n{"type":"event","length":500}\n{}', "item shorter than its declared length"),
        (b'{}\n{"type":"event","length":2}\n{}xx', "item longer than its declared length"),
        (b'{}\n{"length":2}\n{}', "item header has no type"),
        (b'{}\n{"type":"event"}\n{"event_id": "nope"}', "event without a valid event_id"),
        (b'{}\n{"type":"event"}\nnot json', "event item is not valid JSON"),
        (b'{}\n{"type":"event","length":-1}\n', "item length is not a non-negative integer"),
    ],
)
def test_it_answers_malformed_envelopes_with_400_and_one_line(client, project, body, reason):
    proj, key = project
    response = post_envelope(client, proj.pk, body, key=key)
    assert response.status_code == 400
    assert response.json()["detail"] == reason
    assert "\n" not in response["X-Sentry-Error"]


def test_it_answers_a_corrupt_gzip_body_with_400(client, project):
    proj, key = project
    body = gz(envelope_bytes(make_event()))[:-20]
    assert post_envelope(client, proj.pk, body, key=key, encoding="gzip").status_code == 400
    assert post_envelope(client, proj.pk, b"junk", key=key, encoding="gzip").status_code == 400
    assert post_envelope(client, proj.pk, b"junk", key=key, encoding="br").status_code == 400
    assert post_envelope(client, proj.pk, b"junk", key=key, encoding="zstd").status_code == 415


def test_it_accepts_and_drops_unknown_item_types(client, project):
    proj, key = project
    items: list[tuple[dict[str, Any], bytes]] = [
        ({"type": "session"}, b'{"sid":"x","status":"ok"}'),
        ({"type": "client_report"}, b'{"discarded_events":[]}'),
        ({"type": "transaction", "length": 2}, b"{}"),
        ({"type": "attachment", "length": 3, "filename": "a.txt"}, b"abc"),
        ({"type": "something_new"}, b"whatever"),
    ]
    response = post_envelope(client, proj.pk, envelope_bytes(None, extra_items=items), key=key)
    assert response.status_code == 200
    assert response.json() == {}
    assert "transaction" in response["X-Sentry-Rate-Limits"]
    assert not InboxEvent.objects.exists()


def test_it_stores_a_duplicate_event_id_once(client, project):
    proj, key = project
    event = make_event()
    for _ in range(3):
        assert post_envelope(client, proj.pk, envelope_bytes(event), key=key).status_code == 200
    assert InboxEvent.objects.count() == 1
    digest()
    assert post_envelope(client, proj.pk, envelope_bytes(event), key=key).status_code == 200
    digest()
    assert ErrorReport.objects.filter(event_id=event["event_id"]).count() == 1


def test_the_legacy_store_endpoint_takes_one_json_event(client, project):
    proj, key = project
    event = make_event()
    body = json.dumps(event).encode()
    response = post_envelope(client, proj.pk, body, key=key, endpoint="store")
    assert response.status_code == 200
    assert response.json() == {"id": event["event_id"]}
    bad = post_envelope(client, proj.pk, b"{", key=key, endpoint="store")
    assert bad.status_code == 400


def test_it_accepts_dashed_event_ids(client, project):
    proj, key = project
    dashed = str(uuid.uuid4())
    event = make_event(event_id=dashed)
    response = post_envelope(client, proj.pk, envelope_bytes(event), key=key)
    assert response.json() == {"id": dashed.replace("-", "")}


def test_it_answers_cors_preflight_and_refuses_get(client, project):
    proj, _ = project
    response = client.options(f"/api/{proj.pk}/envelope/")
    assert response.status_code == 200
    assert "X-Sentry-Auth" in response["Access-Control-Allow-Headers"]
    assert client.get(f"/api/{proj.pk}/envelope/").status_code == 405


def test_it_needs_no_csrf_token(project):
    from django.test import Client

    proj, key = project
    strict = Client(enforce_csrf_checks=True)
    response = post_envelope(strict, proj.pk, envelope_bytes(make_event()), key=key)
    assert response.status_code == 200


def test_it_rate_limits_per_project_with_sentry_headers(client, project):
    proj, key = project
    proj.rate_limit_per_minute = 2
    proj.save()
    statuses = [
        post_envelope(client, proj.pk, envelope_bytes(make_event()), key=key) for _ in range(4)
    ]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, [r.status_code for r in statuses]
    retry = int(limited[0]["Retry-After"])
    assert 1 <= retry <= 61
    assert limited[0]["X-Sentry-Rate-Limits"] == f"{retry}:error;default:project:rate_limit"


@pytest.mark.parametrize("key", ["\x00" * 32, "abc%00", "k" * 200, "../../etc"])
def test_it_refuses_odd_keys_with_403(client, project, key):
    proj, _ = project
    response = post_envelope(
        client, proj.pk, envelope_bytes(make_event()), query=f"?sentry_key={key}"
    )
    assert response.status_code == 403


def test_it_refuses_a_project_id_beyond_bigint_with_403(client, project):
    _, key = project
    huge = 10**30
    assert post_envelope(client, huge, envelope_bytes(make_event()), key=key).status_code == 403


# Without Redis the counters are rows in the database that stores the events themselves
# (errors/ratelimit.py), so only the Redis store can be down while ingest works.
@pytest.mark.parametrize("store", ["redis"])
def test_a_rate_limit_counter_outage_does_not_cost_accepted_events(client, project, store):
    from tests.conftest import free_port

    proj, key = project
    proj.rate_limit_per_minute = 1
    proj.save()
    dead = f"redis://127.0.0.1:{free_port()}/0"
    dead_redis = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": dead,
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    # With REDIS_URL the counters live in Redis itself; without it, in the Django cache.
    with override_settings(
        CACHES=dead_redis, REDIS_URL=dead if store == "redis" else "", REDIS_TIMEOUT=0.2
    ):
        for _ in range(3):
            response = post_envelope(client, proj.pk, envelope_bytes(make_event()), key=key)
            assert response.status_code == 200
    assert InboxEvent.objects.count() == 3


def test_it_answers_503_when_the_event_cannot_be_stored(client, project, monkeypatch):
    from django.db import OperationalError

    from errors import services

    def database_down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(services, "enqueue", database_down)
    proj, key = project
    response = post_envelope(client, proj.pk, envelope_bytes(make_event()), key=key)
    assert response.status_code == 503
    assert response["Retry-After"] == "30"


def test_an_event_with_nan_among_its_locals_is_accepted_and_digested(client, project):
    # Python's json (and so sentry-sdk) writes NaN and Infinity for such floats; a stricter
    # parser must not turn them into 400s and lost events.
    proj, key = project
    event = make_event()
    body = json.dumps(event)[:-1] + ', "extra": {"ratio": NaN, "limit": Infinity}}'
    response = post_envelope(client, proj.pk, envelope_bytes(json.loads(body)), key=key)
    assert response.status_code == 200, response.content
    raw = bytes(InboxEvent.objects.get(event_id=event["event_id"]).payload)
    assert b"NaN" in raw
    from errors.services import digest

    digest()
    assert ErrorReport.objects.filter(event_id=event["event_id"]).exists()
