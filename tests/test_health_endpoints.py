"""The /health endpoints as load balancers, orchestrators and operators use them."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.test import Client, override_settings

from health import registry
from health.checks import Redis
from tests.conftest import free_port

TOKEN = "a-long-health-token-for-tests-123456"


def get(client: Client, path: str, **headers: Any) -> Any:
    return client.get(path, headers=headers)


def test_live_answers_with_no_io_even_for_a_bare_ip_host(
    client: Client, db: Any, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(0):
        response = client.get("/health/live", HTTP_HOST="10.1.2.3")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/health+json"
    assert json.loads(response.content) == {"status": "pass"}


def test_live_answers_head_and_refuses_post(client: Client) -> None:
    assert client.head("/health/live").status_code == 200
    response = client.post("/health/live")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


# transaction=True: the checks use their own connections, which on SQLite would wait for the
# test's open transaction to release its lock.
@pytest.mark.django_db(transaction=True)
def test_ready_passes_in_a_working_setup(client: Client) -> None:
    response = client.get("/health/ready")
    body = json.loads(response.content)
    assert response.status_code == 200, body
    assert body["status"] == "pass"
    assert {"database", "cache", "broker"} <= set(body["checks"])


@pytest.mark.django_db
def test_a_bare_ip_host_gets_an_answer_from_every_endpoint(
    client: Client, only_switch: Any
) -> None:
    for path in ("/health/", "/health/ready", "/health/switch"):
        response = client.get(path, HTTP_HOST="10.0.0.7")
        assert response.status_code == 200, (path, response.content)


@pytest.mark.django_db
def test_a_failing_component_gives_503_and_warn_gives_200(client: Client, only_switch: Any) -> None:
    only_switch["status"] = "warn"
    response = client.get("/health/")
    assert response.status_code == 200
    assert json.loads(response.content)["status"] == "warn"
    only_switch["status"] = "fail"
    registry_cache_clear()
    response = client.get("/health/")
    assert response.status_code == 503
    assert json.loads(response.content)["status"] == "fail"


def registry_cache_clear() -> None:
    from health.runner import report_cache

    report_cache.clear()


@pytest.mark.django_db
def test_without_the_token_responses_carry_statuses_only(client: Client, only_switch: Any) -> None:
    only_switch["status"] = "fail"
    only_switch["output"] = "db.internal.example:5432 refused /srv/secret"
    with override_settings(OPS_HEALTH_TOKEN=TOKEN):
        body = json.loads(client.get("/health/").content)
    text = json.dumps(body)
    assert body["status"] == "fail"
    assert body["checks"]["switch"][0]["status"] == "fail"
    for leak in ("db.internal.example", "/srv/secret", "releaseId", "serviceId", "observedValue"):
        assert leak not in text


@pytest.mark.django_db
def test_the_token_shows_details_by_header_bearer_or_query(client: Client, switch: Any) -> None:
    with override_settings(OPS_HEALTH_TOKEN=TOKEN):
        for headers, path in (
            ({"X-Health-Token": TOKEN}, "/health/switch"),
            ({"Authorization": f"Bearer {TOKEN}"}, "/health/switch"),
            ({}, f"/health/switch?token={TOKEN}"),
        ):
            body = json.loads(client.get(path, headers=headers).content)
            assert body["releaseId"]
            entry = body["checks"]["switch:responseTime"][0]
            assert entry["observedValue"] == 1.0
            assert entry["observedUnit"] == "ms"
            assert entry["time"]


@pytest.mark.django_db
def test_a_bad_token_is_treated_exactly_like_no_token(client: Client, switch: Any) -> None:
    with override_settings(OPS_HEALTH_TOKEN=TOKEN):
        none = client.get("/health/switch")
        bad = client.get("/health/switch", headers={"X-Health-Token": TOKEN[:-1] + "x"})
        bad_query = client.get("/health/switch?token=nope")
    assert none.status_code == bad.status_code == bad_query.status_code == 200
    strip = lambda r: {k: v for k, v in json.loads(r.content).items() if k != "checks"}  # noqa: E731
    assert strip(none) == strip(bad) == strip(bad_query) == {"status": "pass"}
    assert set(json.loads(bad.content)["checks"]) == {"switch"}


@pytest.mark.django_db
def test_a_staff_session_sees_details_and_an_outsider_does_not(
    client: Client, operator: Any, outsider: Any, switch: Any
) -> None:
    client.force_login(outsider)
    assert "releaseId" not in json.loads(client.get("/health/switch").content)
    client.force_login(operator)
    assert "releaseId" in json.loads(client.get("/health/switch").content)


@pytest.mark.django_db
def test_an_unknown_component_gets_404_json(client: Client) -> None:
    response = client.get("/health/nonsense")
    assert response.status_code == 404
    body = json.loads(response.content)
    assert body["status"] == "fail"
    assert "unknown health component 'nonsense'" in body["output"]
    assert client.get("/health/a/b").status_code == 404


@pytest.mark.django_db
def test_post_gets_405_on_every_endpoint(client: Client) -> None:
    for path in ("/health/", "/health/ready", "/health/database"):
        response = client.post(path)
        assert response.status_code == 405, path
        assert response["Allow"] == "GET, HEAD"


@pytest.mark.django_db
def test_head_answers_with_the_status_and_no_body(client: Client, only_switch: Any) -> None:
    only_switch["status"] = "fail"
    response = client.head("/health/")
    assert response.status_code == 503
    assert response.content == b""


@pytest.mark.django_db
def test_it_speaks_health_json_json_and_html(client: Client, switch: Any) -> None:
    default = client.get("/health/switch", headers={"Accept": "*/*"})
    assert default["Content-Type"] == "application/health+json"
    plain = client.get("/health/switch", headers={"Accept": "application/json"})
    assert plain["Content-Type"] == "application/json"
    assert json.loads(plain.content)["status"] == "pass"
    page = client.get("/health/switch", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page["Content-Type"].startswith("text/html")
    assert b'id="overall">pass<' in page.content


@pytest.mark.django_db
def test_results_are_cached_for_the_ttl_and_cache_control_matches(
    client: Client, only_switch: Any
) -> None:
    with override_settings(OPS_HEALTH_CACHE_TTL=0.5):
        for _ in range(20):
            response = client.get("/health/")
        assert only_switch["runs"] == 1
        assert response["Cache-Control"] == "public, max-age=1"
        time.sleep(0.6)
        client.get("/health/")
        assert only_switch["runs"] == 2
    with override_settings(OPS_HEALTH_CACHE_TTL=0):
        client.get("/health/")
        client.get("/health/")
        assert only_switch["runs"] == 4
        assert client.get("/health/")["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_the_default_ttl_is_two_seconds() -> None:
    from django.conf import settings

    assert settings.OPS_HEALTH_CACHE_TTL == 2.0


# The checks run in their own threads, on their own connections: commit the rows.
@pytest.mark.django_db(transaction=True)
def test_a_hung_external_service_fails_at_its_timeout_and_the_endpoint_answers_in_time(
    client: Client, silent_server: Any
) -> None:
    from health.models import ExternalService

    ExternalService.objects.create(
        name="payments",
        url=f"http://127.0.0.1:{silent_server.port}/status",
        timeout_seconds=1.0,
        allow_private_network=True,
    )
    started = time.perf_counter()
    response = client.get("/health/", headers={"X-Health-Token": TOKEN})
    elapsed = time.perf_counter() - started
    with override_settings(OPS_HEALTH_TOKEN=TOKEN):
        registry_cache_clear()
        detailed = json.loads(
            client.get("/health/external", headers={"X-Health-Token": TOKEN}).content
        )
    assert response.status_code == 503
    assert elapsed < 1.0 + 0.5, elapsed
    assert "payments: timed out" in detailed["output"]


# The checks run in their own threads, on their own connections: commit the rows.
@pytest.mark.django_db(transaction=True)
def test_a_private_external_service_is_refused_unless_allowed(client: Client) -> None:
    from health.models import ExternalService

    ExternalService.objects.create(name="metadata", url="http://169.254.169.254/latest/")
    with override_settings(OPS_HEALTH_TOKEN=TOKEN):
        body = json.loads(client.get("/health/external", headers={"X-Health-Token": TOKEN}).content)
    assert body["status"] == "fail"
    assert "private or reserved address" in body["output"]


# The checks run in their own threads, on their own connections: commit the rows.
@pytest.mark.django_db(transaction=True)
def test_an_external_service_answering_the_wrong_status_fails(
    client: Client, http_server: Any
) -> None:
    from health.models import ExternalService

    def answer(handler: Any) -> None:
        handler.send_response(502)
        handler.end_headers()

    url = http_server(answer)
    ExternalService.objects.create(name="search", url=url, allow_private_network=True)
    ExternalService.objects.create(
        name="optional", url=url, allow_private_network=True, critical=False, expected_status=200
    )
    with override_settings(OPS_HEALTH_TOKEN=TOKEN):
        body = json.loads(client.get("/health/external", headers={"X-Health-Token": TOKEN}).content)
    assert body["status"] == "fail"
    assert "search: HTTP 502, expected 200" in body["output"]
    assert body["checks"]["external:search:status"][0]["observedValue"] == 502


@pytest.mark.django_db
def test_redis_on_a_closed_port_fails_ready_within_the_timeout_and_live_stays_up(
    client: Client,
) -> None:
    port = free_port()
    registry.register("redis", lambda: [Redis(url=f"redis://127.0.0.1:{port}/0")], ready=True)
    started = time.perf_counter()
    response = client.get("/health/ready")
    elapsed = time.perf_counter() - started
    assert response.status_code == 503
    assert response["Content-Type"] == "application/health+json"
    assert json.loads(response.content)["checks"]["redis"][0]["status"] == "fail"
    assert elapsed < 2.0 + 0.5
    assert client.get("/health/live").status_code == 200


@pytest.mark.django_db
def test_a_hung_redis_fails_at_the_timeout_and_a_second_probe_does_not_pile_up_threads(
    client: Client, silent_server: Any
) -> None:
    import threading

    registry.register(
        "redis",
        lambda: [Redis(url=f"redis://127.0.0.1:{silent_server.port}/0")],
        ready=True,
    )
    with override_settings(OPS_HEALTH_CHECK_TIMEOUT=0.5, OPS_HEALTH_CACHE_TTL=0):
        started = time.perf_counter()
        response = client.get("/health/redis")
        first = time.perf_counter() - started
        threads_after_first = threading.active_count()
        for _ in range(5):
            client.get("/health/redis")
        assert threading.active_count() <= threads_after_first + 1
    assert response.status_code == 503
    assert first < 0.5 + 0.5


@pytest.mark.django_db
def test_a_failing_probe_logs_once_not_on_every_poll(
    client: Client, only_switch: Any, caplog: Any
) -> None:
    only_switch["status"] = "fail"
    with override_settings(OPS_HEALTH_CACHE_TTL=0):
        for _ in range(10):
            client.get("/health/")
        only_switch["status"] = "pass"
        client.get("/health/")
        only_switch["status"] = "fail"
        client.get("/health/")
    records = [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]
    assert [r.getMessage() for r in records] == ["health component switch: switched off"] * 2


def _self_signed(tmp_path: Any, days: int) -> tuple[str, str]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


@pytest.fixture
def https_server(tmp_path: Any) -> Any:
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    cert, key = _self_signed(tmp_path, days=5)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.mark.django_db(transaction=True)
def test_a_certificate_expiring_soon_warns_and_an_untrusted_one_fails(
    client: Client, https_server: str
) -> None:
    from health.models import ExternalService

    service = ExternalService.objects.create(
        name="billing",
        url=https_server,
        verify_tls=False,
        tls_warn_days=14,
        allow_private_network=True,
    )
    with override_settings(OPS_HEALTH_TOKEN=TOKEN):
        response = client.get("/health/external", headers={"X-Health-Token": TOKEN})
        body = json.loads(response.content)
        assert response.status_code == 200
        assert body["status"] == "warn"
        assert "billing: TLS certificate expires in" in body["output"]
        days = body["checks"]["external:billing:certificateExpiresIn"][0]["observedValue"]
        assert 4 <= days <= 5
        service.verify_tls = True
        service.save()
        registry_cache_clear()
        body = json.loads(client.get("/health/external", headers={"X-Health-Token": TOKEN}).content)
    assert body["status"] == "fail"
    assert "CERTIFICATE_VERIFY_FAILED" in body["output"]


@pytest.mark.django_db(transaction=True)
def test_during_maintenance_live_stays_up_and_the_others_report_it(
    client: Client, only_switch: Any
) -> None:
    from maintenance import state

    state.enable(message="database upgrade", actor="test")
    try:
        assert client.get("/health/live").status_code == 200
        body = json.loads(client.get("/health/").content)
        assert body["maintenance"] is True
        assert body["notes"] == ["maintenance mode is on"]
        with override_settings(OPS_HEALTH_TOKEN=TOKEN):
            registry_cache_clear()
            detailed = json.loads(client.get("/health/", headers={"X-Health-Token": TOKEN}).content)
        assert "maintenance: database upgrade" in detailed["notes"]
    finally:
        state.disable(actor="test")
    registry_cache_clear()
    assert "maintenance" not in json.loads(client.get("/health/").content)
