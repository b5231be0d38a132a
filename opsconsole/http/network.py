"""Sockets for outbound HTTP that go only where the guard looked, and no longer than allowed.

httpcore normally resolves the host itself when it connects, after any check we made: a DNS
answer that changes between the two (rebinding) would walk past the guard. This backend
resolves once, vets every address, and connects the socket to a vetted address; TLS still
uses the host name for SNI and certificate checks, and httpx still sends it as `Host`.
Every socket operation also waits at most until the request's overall deadline, so a server
that trickles a byte at a time cannot hold a worker past it.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import httpcore

from .addresses import Network, refusal
from .targets import BlockedDestination

_SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)
Resolved = tuple[int, tuple[Any, ...]]  # (family, sockaddr)


def _budget(deadline: float, timeout: float | None, error: type[Exception], what: str) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise error(f"the request's deadline passed while {what}")
    return remaining if timeout is None else min(timeout, remaining)


def resolve(host: str, port: int, deadline: float) -> list[Resolved]:
    """getaddrinfo, once, given at most until the deadline (a hung resolver is abandoned)."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
        return [(family, (str(literal), port))]
    outcome: dict[str, Any] = {}

    def lookup() -> None:
        try:
            outcome["infos"] = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except OSError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=lookup, name="outbound-resolve", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()))
    if worker.is_alive():
        raise httpcore.ConnectTimeout(f"resolving {host} took longer than the deadline")
    if "error" in outcome:
        exc = outcome["error"]
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror or exc}")
    seen: list[Resolved] = []
    for family, _type, _proto, _name, sockaddr in outcome["infos"]:
        if (family, sockaddr) not in seen:
            seen.append((family, sockaddr))
    return seen


def vet(host: str, addresses: Iterable[Resolved], allowed: Sequence[Network]) -> None:
    """BlockedDestination unless every address is one outbound HTTP may reach."""
    for _family, sockaddr in addresses:
        # Drop an IPv6 zone ("fe80::1%eth0"): the address decides, not the interface.
        why = refusal(ipaddress.ip_address(str(sockaddr[0]).partition("%")[0]), allowed)
        if why:
            raise BlockedDestination(
                f"{host} resolves to {why}; allow it explicitly "
                "(OPS_HTTP_ALLOW_NETWORKS) if this is intended"
            )


def _readable(sock: socket.socket) -> bool:
    if sock.fileno() == -1:
        return True
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class DeadlineStream(httpcore.NetworkStream):
    """A connected socket whose every read, write and TLS handshake ends by the deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        budget = _budget(self._deadline, timeout, httpcore.ReadTimeout, "reading")
        try:
            self._sock.settimeout(budget)
            return self._sock.recv(max_bytes)
        except TimeoutError:
            raise httpcore.ReadTimeout("no data before the deadline") from None
        except OSError as exc:
            raise httpcore.ReadError(str(exc)) from None

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        while buffer:
            budget = _budget(self._deadline, timeout, httpcore.WriteTimeout, "writing")
            try:
                self._sock.settimeout(budget)
                sent = self._sock.send(buffer)
            except TimeoutError:
                raise httpcore.WriteTimeout("could not send before the deadline") from None
            except OSError as exc:
                raise httpcore.WriteError(str(exc)) from None
            buffer = buffer[sent:]

    def close(self) -> None:
        self._sock.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        budget = _budget(self._deadline, timeout, httpcore.ConnectTimeout, "starting TLS")
        try:
            self._sock.settimeout(budget)
            wrapped = ssl_context.wrap_socket(self._sock, server_hostname=server_hostname)
        except TimeoutError:
            self.close()
            raise httpcore.ConnectTimeout("the TLS handshake did not finish in time") from None
        except OSError as exc:
            self.close()
            raise httpcore.ConnectError(str(exc)) from None
        return DeadlineStream(wrapped, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._sock if isinstance(self._sock, ssl.SSLSocket) else None
        if info == "client_addr":
            return self._sock.getsockname()
        if info == "server_addr":
            return self._sock.getpeername()
        if info == "socket":
            return self._sock
        if info == "is_readable":
            return _readable(self._sock)
        return None


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's network backend for one request: vetted addresses, one deadline."""

    def __init__(self, *, deadline: float, allow_private: bool, allowed: Sequence[Network]) -> None:
        self.deadline = deadline
        self.allow_private = allow_private
        self.allowed = allowed

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = resolve(host, port, self.deadline)
        if not self.allow_private:
            vet(host, addresses, self.allowed)
        failures: list[str] = []
        for family, sockaddr in addresses:
            budget = _budget(self.deadline, timeout, httpcore.ConnectTimeout, "connecting")
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            try:
                sock.settimeout(budget)
                if local_address is not None:
                    sock.bind((local_address, 0))
                # The vetted address itself: no second lookup between the check and the use.
                sock.connect(sockaddr)
                for option in socket_options or ():
                    sock.setsockopt(*option)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except TimeoutError:
                sock.close()
                failures.append(f"{sockaddr[0]}: timed out")
                continue
            except OSError as exc:
                sock.close()
                failures.append(f"{sockaddr[0]}: {exc.strerror or exc}")
                continue
            return DeadlineStream(sock, self.deadline)
        message = f"cannot connect to {host} port {port} ({'; '.join(failures)})"
        if failures and all(item.endswith("timed out") for item in failures):
            raise httpcore.ConnectTimeout(message)
        raise httpcore.ConnectError(message)
