"""Outbound HTTP: it goes only where the guard looked, ends at its deadline, reads at most its
cap, never shows a reply beyond a short inert excerpt, and refuses a bad URL as a form error.

Real local HTTP(S) servers in threads; the only stand-in is `socket.getaddrinfo`, because DNS
rebinding cannot otherwise be staged on one machine.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import socket
import ssl
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.test import Client, override_settings
from django.urls import reverse

from alerts.models import Channel, Delivery
from health.models import ExternalService
from opsconsole import http
from tests.fixtures_alerts import make_channel, smtp_listening

TOKEN = "a-long-health-token-for-tests-123456"

# --- real local servers ------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    seen: list[dict[str, Any]]


def serve(
    handle: Callable[[BaseHTTPRequestHandler], None],
    host: str = "127.0.0.1",
    port: int = 0,
    tls: ssl.SSLContext | None = None,
) -> _Server:
    """A real http.server on `host` in a thread; it records each request it answers."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            server.seen.append({"path": self.path, "host": self.headers.get("Host")})
            # The client may hang up on purpose (deadline, byte cap).
            with contextlib.suppress(OSError):
                handle(self)

        do_GET = do_POST = do_HEAD = _any  # noqa: N815

        def log_message(self, *args: Any) -> None:
            pass

    server = _Server((host, port), Handler)
    server.seen = []
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def servers() -> Iterator[list[_Server]]:
    started: list[_Server] = []
    yield started
    for server in started:
        server.shutdown()
        server.server_close()


def ok(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "2")
    handler.end_headers()
    handler.wfile.write(b"ok")


def trickle_body(handler: BaseHTTPRequestHandler) -> None:
    """A 200 whose body comes at one byte per 0.2 s: every read is quick, the whole is not."""
    handler.send_response(200)
    handler.send_header("Content-Length", "25")
    handler.end_headers()
    handler.wfile.flush()
    for _ in range(25):  # 5 s in all
        handler.wfile.write(b"x")
        handler.wfile.flush()
        time.sleep(0.2)


def trickle_status_line(handler: BaseHTTPRequestHandler) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
        time.sleep(0.2)


class OneGiB:
    """Announces and sends 1 GiB; counts what it managed to push before the client hung up."""

    SIZE = 1 << 30
    BLOCK = b"\0" * (64 * 1024)

    def __init__(self) -> None:
        self.sent = 0

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(self.SIZE))
        handler.end_headers()
        while self.sent < self.SIZE:
            handler.wfile.write(self.BLOCK)
            self.sent += len(self.BLOCK)


# --- a DNS answer that changes between lookups -----------------------------------------------


class FakeDNS:
    """socket.getaddrinfo for names under .test: each lookup takes the next answer (the last
    one repeats); other names go to the real resolver."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.answers: dict[str, list[str]] = {}
        self.lookups: list[str] = []
        real = socket.getaddrinfo

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            name = host.decode() if isinstance(host, bytes) else str(host)
            if name not in self.answers:
                return real(host, port, *args, **kwargs)
            self.lookups.append(name)
            queue = self.answers[name]
            address = queue.pop(0) if len(queue) > 1 else queue[0]
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sockaddr = (
                (address, int(port), 0, 0) if family == socket.AF_INET6 else (address, int(port))
            )
            return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    return FakeDNS(monkeypatch)


# --- 1. connect to the address that was vetted ------------------------------------------------


def _twin_servers(servers: list[_Server], tls: ssl.SSLContext | None = None) -> tuple[Any, Any]:
    """One server on 127.0.0.2 (the vetted address) and one on 127.0.0.1, same port."""
    for _ in range(20):
        vetted = serve(ok, host="127.0.0.2", tls=tls)
        port = vetted.server_address[1]
        try:
            internal = serve(ok, host="127.0.0.1", port=port, tls=tls)
        except OSError:
            vetted.shutdown()
            vetted.server_close()
            continue
        servers += [vetted, internal]
        return vetted, internal
    raise AssertionError("no port free on both 127.0.0.1 and 127.0.0.2")


# Only 127.0.0.2 counts as reachable: it stands for a public address, 127.0.0.1 for the
# internal service a rebinding attacker wants to reach.
@override_settings(OPS_HTTP_ALLOW_NETWORKS=["127.0.0.2/32"])
def test_it_sends_to_the_address_it_vetted_when_the_name_rebinds_to_loopback(
    dns: FakeDNS, servers: list[_Server]
) -> None:
    vetted, internal = _twin_servers(servers)
    port = vetted.server_address[1]
    dns.answers["rebind.test"] = ["127.0.0.2", "127.0.0.1"]

    reply = http.request("GET", f"http://rebind.test:{port}/hook", timeout=5)

    assert reply.status_code == 200
    assert reply.peer_address == "127.0.0.2"
    assert dns.lookups == ["rebind.test"]  # resolved once, for the check and the connection
    assert [r["path"] for r in vetted.seen] == ["/hook"]
    assert vetted.seen[0]["host"] == f"rebind.test:{port}"  # the name, not the address
    assert internal.seen == []


def _certificates(tmp_path: Path, name: str) -> tuple[str, str, str]:
    """A throwaway CA and a certificate it signed for `name`: (ca, cert, key) PEM paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Ops Console test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(paths[0]), str(paths[1]), str(paths[2])


@override_settings(OPS_HTTP_ALLOW_NETWORKS=["127.0.0.2/32"])
def test_a_pinned_https_request_still_sends_the_name_for_sni_and_checks_the_certificate_for_it(
    dns: FakeDNS, servers: list[_Server], tmp_path: Path
) -> None:
    ca, cert, key = _certificates(tmp_path, "hooks.example.test")
    names: list[str | None] = []
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    server_tls.sni_callback = lambda sock, name, ctx: names.append(name)
    vetted, internal = _twin_servers(servers, tls=server_tls)
    port = vetted.server_address[1]
    trust = ssl.create_default_context(cafile=ca)
    dns.answers["hooks.example.test"] = ["127.0.0.2", "127.0.0.1"]
    dns.answers["other.example.test"] = ["127.0.0.2"]

    reply = http.request("GET", f"https://hooks.example.test:{port}/", timeout=5, verify=trust)
    assert reply.status_code == 200
    assert reply.peer_address == "127.0.0.2"
    assert reply.peer_certificate  # DER of the leaf, for expiry checks
    assert names == ["hooks.example.test"]
    assert dns.lookups == ["hooks.example.test"]
    assert internal.seen == []

    # Pinning the address does not loosen verification: the certificate must match the name.
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        http.request("GET", f"https://other.example.test:{port}/", timeout=5, verify=trust)


# --- 2. IPv4 hidden in IPv6 ------------------------------------------------------------------

# address, the IPv4 address it leads to
EMBEDDED = [
    ("::ffff:127.0.0.1", ["127.0.0.1"]),  # IPv4-mapped
    ("::ffff:a9fe:a9fe", ["169.254.169.254"]),
    ("::10.0.0.1", ["10.0.0.1"]),  # IPv4-compatible (deprecated, still parsed)
    ("64:ff9b::7f00:1", ["127.0.0.1"]),  # NAT64 well-known prefix
    ("64:ff9b::a9fe:a9fe", ["169.254.169.254"]),
    ("2002:7f00:1::1", ["127.0.0.1"]),  # 6to4
    ("2002:c0a8:101:5::9", ["192.168.1.1"]),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", ["65.54.227.120", "127.0.0.1"]),  # Teredo
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", ["65.54.227.120", "10.0.0.1"]),
    ("2606:4700:4700::1111", []),
    ("::1", []),
    ("::", []),
]


@pytest.mark.parametrize(("address", "inner"), EMBEDDED)
def test_it_finds_the_ipv4_address_inside_each_ipv6_translation_form(
    address: str, inner: list[str]
) -> None:
    found = http.embedded_ipv4(ipaddress.IPv6Address(address))
    assert [str(v4) for v4 in found] == inner


REFUSED = [
    "::ffff:127.0.0.1",
    "::ffff:10.1.2.3",
    "::ffff:169.254.169.254",
    "::127.0.0.1",
    "::192.168.0.10",
    "64:ff9b::127.0.0.1",
    "64:ff9b::10.0.0.5",
    "64:ff9b::169.254.169.254",
    "64:ff9b:1::a00:1",  # local-use NAT64, /96 layout
    "64:ff9b:1:a00:1::",  # local-use NAT64, /48 layout
    "2002:7f00:1::1",
    "2002:a9fe:a9fe::1",
    "2002:ac10:1::1",  # 172.16.0.1
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo client 127.0.0.1
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo client 10.0.0.1
    "::1",
    "fd00:ec2::254",  # the AWS metadata service over IPv6
    "fe80::1",
    "127.0.0.1",
    "169.254.169.254",
    "100.64.0.1",
]
REACHABLE = ["8.8.8.8", "2606:4700:4700::1111", "64:ff9b::8.8.8.8", "2002:808:808::1"]


@override_settings(OPS_HTTP_ALLOW_NETWORKS=[])
@pytest.mark.parametrize("address", REFUSED)
def test_an_address_leading_to_a_private_ipv4_address_is_refused(address: str) -> None:
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(http.BlockedDestination, match="private or reserved|local-use NAT64"):
        http.check_destination(f"https://{host}/hook")


@override_settings(OPS_HTTP_ALLOW_NETWORKS=[])
@pytest.mark.parametrize("address", REACHABLE)
def test_a_public_address_and_its_ipv6_forms_are_allowed(address: str) -> None:
    host = f"[{address}]" if ":" in address else address
    http.check_destination(f"https://{host}/hook")


@override_settings(OPS_HTTP_ALLOW_NETWORKS=[])
def test_a_name_whose_aaaa_record_hides_loopback_is_refused_at_connect_time(
    dns: FakeDNS, servers: list[_Server]
) -> None:
    internal = serve(ok)
    servers.append(internal)
    dns.answers["nat64.test"] = ["64:ff9b::7f00:1"]
    with pytest.raises(http.BlockedDestination, match="leads to 127.0.0.1"):
        http.request("GET", f"http://nat64.test:{internal.server_address[1]}/", timeout=5)
    assert internal.seen == []


# --- 3. an overall deadline and a byte cap -----------------------------------------------------


@override_settings(OPS_HTTP_ALLOW_NETWORKS=["127.0.0.0/8"])
@pytest.mark.parametrize("handle", [trickle_body, trickle_status_line], ids=["body", "status"])
def test_a_server_trickling_a_byte_every_200_ms_is_cut_at_the_deadline(
    servers: list[_Server], handle: Callable[[BaseHTTPRequestHandler], None]
) -> None:
    server = serve(handle)
    servers.append(server)
    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        http.request("GET", f"http://127.0.0.1:{server.server_address[1]}/", timeout=1.0)
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 1.3, elapsed


@override_settings(OPS_HTTP_ALLOW_NETWORKS=["127.0.0.0/8"])
def test_a_one_gib_answer_is_cut_at_the_cap_without_being_held_in_memory(
    servers: list[_Server],
) -> None:
    huge = OneGiB()
    server = serve(huge)
    servers.append(server)
    tracemalloc.start()
    try:
        started = time.monotonic()
        reply = http.request(
            "GET", f"http://127.0.0.1:{server.server_address[1]}/", timeout=10, max_bytes=65536
        )
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reply.status_code == 200
    assert reply.truncated
    assert len(reply.body) == 65536
    assert elapsed < 2, elapsed
    assert peak < 8 * 1024 * 1024, peak
    time.sleep(0.2)
    assert huge.sent < 64 * 1024 * 1024  # the server stopped: the connection was closed


@pytest.mark.django_db
@pytest.mark.usefixtures("memory_broker")
@override_settings(OPS_HTTP_ALLOW_NETWORKS=["127.0.0.0/8"], ALERTS_HTTP_TIMEOUT=1.0)
def test_a_webhook_receiver_that_trickles_its_answer_fails_the_delivery_at_the_timeout(
    servers: list[_Server],
) -> None:
    from alerts import services

    server = serve(trickle_body)
    servers.append(server)
    channel = make_channel(
        Channel.Type.WEBHOOK, url=f"http://127.0.0.1:{server.server_address[1]}/h"
    )
    started = time.monotonic()
    delivery = services.send_test_notification(channel)
    elapsed = time.monotonic() - started
    assert delivery.error == "timed out after 1 s"
    assert elapsed < 1.5, elapsed


# --- 4. replies are shown only as a short, inert excerpt ----------------------------------------

HOSTILE = (
    b"<html><head><title>Bad gateway</title></head><body>"
    b"<script>fetch('/steal?c='+document.cookie)</script>"
    b"\x1b[31mupstream\x1b[0m refused:\x00 \xe2\x80\xaetxt.exe\r\n"
    + b"A" * 100_000
    + b"</body></html>"
)


def hostile(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(502)
    handler.send_header("Content-Type", "text/html")
    handler.send_header("Content-Length", str(len(HOSTILE)))
    handler.end_headers()
    handler.wfile.write(HOSTILE)


def _assert_inert(text: str) -> None:
    assert "<" not in text and ">" not in text
    assert "script" not in text
    assert "\x1b" not in text and "\x00" not in text and "\u202e" not in text
    assert "\r" not in text and "\n" not in text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"<h1>Not found</h1>\n<p>no such hook</p>", "Not found no such hook"),
        (b"<style>p{color:red}</style><SCRIPT>alert(1)</SCRIPT>gone", "gone"),
        (b"oops <script>unterminated(", "oops"),
        (b'{"error": "invalid_token"}', '{"error": "invalid_token"}'),
        (b"\x1b[1;31mred\x1b[0m \x07bell", "red bell"),
        ("abc\u202edef\u200b".encode(), "abc def"),
        (b"\xff\xfe broken utf-8", "\ufffd\ufffd broken utf-8"),
        (b"x" * 500, "x" * 199 + "…"),
    ],
)
def test_an_excerpt_is_short_and_has_no_markup_or_control_characters(
    raw: bytes, expected: str
) -> None:
    assert http.excerpt(raw) == expected


@pytest.mark.django_db
@pytest.mark.usefixtures("memory_broker")
@override_settings(OPS_HTTP_ALLOW_NETWORKS=["127.0.0.0/8"])
def test_a_webhook_error_page_is_shown_as_a_short_inert_excerpt(
    client: Client, admin: Any, servers: list[_Server]
) -> None:
    server = serve(hostile)
    servers.append(server)
    channel = make_channel(
        Channel.Type.WEBHOOK, url=f"http://127.0.0.1:{server.server_address[1]}/h"
    )
    client.force_login(admin)
    response = client.post(
        reverse("admin:alerts_channel_changelist"),
        {"action": "send_test_notification", "_selected_action": [channel.pk]},
        follow=True,
    )
    error = Delivery.objects.get().error
    assert error.startswith("HTTP 502: Bad gateway upstream refused: txt.exe AAAA")
    assert len(error) <= len("HTTP 502: ") + http.EXCERPT_CHARS
    _assert_inert(error)
    page = response.content.decode()
    assert "not delivered (HTTP 502: Bad gateway upstream refused" in page
    assert "steal" not in page and "&lt;script" not in page


class _RefusingInbox:
    """An SMTP server whose DATA reply quotes markup and terminal escapes back."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        return "554 <b>rejected</b> <script>x()</script>\x1b[31m spam " + "C" * 400


@pytest.mark.django_db
@pytest.mark.usefixtures("memory_broker")
def test_an_smtp_servers_refusal_is_kept_as_a_short_inert_excerpt() -> None:
    from alerts import services

    with smtp_listening(_RefusingInbox()):
        delivery = services.send_test_notification(make_channel(Channel.Type.EMAIL))
    assert delivery.response_code == 554
    assert delivery.error.startswith("SMTP error 554: rejected spam CCC")
    assert len(delivery.error) <= len("SMTP error 554: ") + http.EXCERPT_CHARS
    _assert_inert(delivery.error)


def garbled_status_line(handler: BaseHTTPRequestHandler) -> None:
    handler.wfile.write(b"HTTP/1.1 2OO <script>alert(1)</script>\x1b[2J" + b"B" * 600 + b"\r\n\r\n")


@pytest.mark.django_db(transaction=True)
def test_a_health_check_never_shows_what_a_broken_server_sent_beyond_an_inert_excerpt(
    client: Client, servers: list[_Server]
) -> None:
    server = serve(garbled_status_line)
    servers.append(server)
    ExternalService.objects.create(
        name="ledger",
        url=f"http://127.0.0.1:{server.server_address[1]}/",
        allow_private_network=True,
    )
    with override_settings(OPS_HEALTH_TOKEN=TOKEN):
        body = json.loads(client.get("/health/external", headers={"X-Health-Token": TOKEN}).content)
    assert body["status"] == "fail"
    output = body["output"]
    assert output.startswith("external: ledger: RemoteProtocolError: illegal status line")
    assert len(output) < 260
    _assert_inert(output)


# --- 5. one URL parser for every outbound URL field -----------------------------------------

BAD_URLS = [
    ("https://hooks.example.com:99999/x", "the port must be a number from 1 to 65535"),
    ("https://hooks.example.com:0/x", "the port must be a number from 1 to 65535"),
    ("https://hooks.example.com:80a/x", "Enter a valid URL"),
    ("https://[fe80::1/x", "Enter a valid URL"),
    ("https://[not-v6]/x", "Enter a valid URL"),
    ("https://bad_.-label.example.com/", "Enter a valid URL"),
]


def channel_form(url: str) -> dict[str, str]:
    return {
        "name": "pager",
        "type": "webhook",
        "enabled": "on",
        "min_severity": "20",
        "url": url,
        "secret": "s" * 32,
        "send_resolved": "on",
    }


def service_form(url: str) -> dict[str, str]:
    return {
        "name": "billing",
        "url": url,
        "method": "GET",
        "expected_status": "200",
        "timeout_seconds": "2",
        "tls_warn_days": "14",
        "critical": "on",
        "verify_tls": "on",
        "enabled": "on",
    }


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "message"), BAD_URLS)
def test_a_channel_url_with_a_bad_port_or_host_is_a_form_error_not_a_500(
    client: Client, admin: Any, url: str, message: str
) -> None:
    client.force_login(admin)
    response = client.post(reverse("admin:alerts_channel_add"), channel_form(url))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["url"]
    assert len(errors) == 1 and message in errors[0], errors
    assert not Channel.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "message"), BAD_URLS)
def test_an_external_service_url_with_a_bad_port_or_host_is_a_form_error(
    client: Client, admin: Any, url: str, message: str
) -> None:
    client.force_login(admin)
    response = client.post(reverse("admin:health_externalservice_add"), service_form(url))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["url"]
    assert len(errors) == 1 and message in errors[0], errors
    assert not ExternalService.objects.exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("memory_broker")
def test_a_stored_channel_url_with_a_bad_port_fails_its_delivery_with_the_reason() -> None:
    from alerts import services

    channel = make_channel(Channel.Type.WEBHOOK, url="https://93.184.215.14/hook")
    Channel.objects.filter(pk=channel.pk).update(url="https://93.184.215.14:99999/hook")
    delivery = services.send_test_notification(Channel.objects.get())
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.error == (
        "refused destination: the port must be a number from 1 to 65535, not '99999'"
    )
