"""Capturing Ops Console's own errors with sentry-sdk, delivered in-process.

`init()` (called from ErrorsConfig.ready() when settings.OPS_ERRORS_CAPTURE is on) sets up
sentry-sdk with Celery and logging (ERROR records) integrations and `LocalTransport`, and
captures request exceptions itself from Django's `got_request_exception` signal, with the
request's method, URL, query string, route and headers (credentials and cookies filtered).
sentry-sdk's own Django integration is not used: it wraps every middleware, the view and
the WSGI call in per-request bookkeeping for tracing, which we do not use and which was over a
third of the CPU of a request to the console (docs/PERFORMANCE.md, Metrics). The WSGI
application (opsconsole/wsgi.py) clears this thread's sentry scope before each request, so
breadcrumbs and tags never leak from one request into another's event.

The transport hands envelopes to a background thread that ingests them like any other DSN would
(parse -> InboxEvent). The thread keeps request transactions out of it: an error logged inside
a transaction that later rolls back is still kept.

No recursion: while the writer ingests, anything it raises or logs is spooled, not captured
again. No loss: an envelope the database will not take (down, locked, refusing) is written to a
spool directory (errors/spool.py) and ingested by the next digest run (drain_spool). SENTRY_DSN
also forwards to a real Sentry.

No secrets leave the process: every event passes the server-side scrub (errors/scrubbing.py)
in before_send, so what is forwarded to SENTRY_DSN is scrubbed too, and frame locals are not
sent unless OPS_ERRORS_CAPTURE_LOCALS is on.

Not a way to fill storage: events are rate-limited per process, django.security.* noise (bad
Host headers) more tightly still (CaptureLimits), and the spool is capped and private
(errors/spool.py).
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
from typing import Any

import sentry_sdk
from django.conf import settings
from django.core.signals import got_request_exception
from django.db import close_old_connections
from sentry_sdk.envelope import Envelope
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.logging import LoggingIntegration, ignore_logger
from sentry_sdk.transport import HttpTransport, Transport
from sentry_sdk.utils import capture_internal_exceptions, event_from_exception

from errors.own import accept_own_envelope
from errors.scrubbing import FILTERED, Scrubber
from errors.spool import spool, spool_dir
from errors.throttle import TokenBucket, note
from opsconsole import __version__
from opsconsole.context import current_request_id

logger = logging.getLogger(__name__)
_busy = threading.local()
QUEUE_SIZE = 1000


def drain_spool(limit: int = 1000) -> int:
    """Ingest spooled envelopes; each file is removed once its event is in the inbox."""
    folder = spool_dir()
    if not folder.is_dir():
        return 0
    done = 0
    for path in sorted(folder.glob("*.envelope"))[:limit]:
        try:
            accept_own_envelope(path.read_bytes())
        except FileNotFoundError:  # another worker took it
            continue
        path.unlink(missing_ok=True)
        done += 1
    return done


class LocalTransport(Transport):
    """A sentry-sdk transport that ingests into our own database, off the calling thread."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.forward: Transport | None = None
        self._queue: queue.Queue[bytes] = queue.Queue(QUEUE_SIZE)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def capture_envelope(self, envelope: Envelope) -> None:
        if self.forward is not None:
            self.forward.capture_envelope(envelope)
        data = envelope.serialize()
        if getattr(_busy, "active", False):
            spool(data)  # raised while ingesting: do not feed it back into ingest
            return
        self._ensure_thread()
        try:
            self._queue.put_nowait(data)
        except queue.Full:
            spool(data)

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="ops-errors-capture", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        _busy.active = True
        while True:
            data = self._queue.get()
            try:
                accept_own_envelope(data)
            except Exception:
                spool(data)
            finally:
                self._queue.task_done()
                close_old_connections()

    def flush(self, timeout: float, callback: Any = None) -> None:
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        done.wait(timeout)
        if self.forward is not None:
            self.forward.flush(timeout, callback)

    def kill(self) -> None:
        if self.forward is not None:
            self.forward.kill()


def _add_request_id(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    request_id = current_request_id()
    if request_id:
        event.setdefault("tags", {})["request_id"] = request_id
    return event


class CaptureLimits:
    """sentry-sdk's before_send: our own capture must not be a way to fill storage.

    django.security.* events (DisallowedHost for a bad Host header, and the like) are what an
    outsider can trigger at will, so they pass a small bucket of their own first; then every
    event takes a token from the process's bucket. Dropped events are counted, and said on
    stderr at most once a minute."""

    def __init__(self, per_minute: int, security_per_minute: int) -> None:
        self.own = TokenBucket(per_minute)
        self.security = TokenBucket(security_per_minute)
        self.dropped = 0

    def __call__(self, event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
        is_security = str(event.get("logger") or "").startswith("django.security")
        if (is_security and not self.security.take()) or not self.own.take():
            self.dropped += 1
            note(f"own error capture over its rate limit: {self.dropped} events dropped so far")
            return None
        return scrub_event(_add_request_id(event, hint))


def scrub_event(event: dict[str, Any]) -> dict[str, Any]:
    """The server-side scrub, run before the event leaves the process: an event forwarded to an
    external Sentry (SENTRY_DSN) never passes through our server's scrub, and breadcrumbs,
    messages, extra and contexts can hold URLs with `?key=...` as well as the request can."""
    scrubbed: dict[str, Any] = Scrubber(settings.OPS_ERRORS_SCRUB_FIELDS).scrub(event)
    return scrubbed


# Headers that identify the client; credentials are caught by the scrub fields' words.
CLIENT_ADDRESS_HEADERS = frozenset({"x-forwarded-for", "x-real-ip", "forwarded"})


def request_data(request: Any) -> dict[str, Any]:
    """The request as Sentry's `request` interface has it: no body, no cookies, no secrets.
    Headers named by a scrub word (settings.OPS_ERRORS_SCRUB_FIELDS: auth, cookie, token, ...),
    query parameters named so (`?key=...`, `&dsn=...`) and client addresses are filtered here,
    before anything leaves the process: events forwarded to an external Sentry (SENTRY_DSN)
    never pass through our server-side scrub."""
    scrubber = Scrubber(settings.OPS_ERRORS_SCRUB_FIELDS)
    meta = request.META
    try:
        url = request.build_absolute_uri(request.path)
    except Exception:  # DisallowedHost and the like: the path is still worth having
        url = request.path
    headers = {}
    for key, value in meta.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").title()
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            name = key.replace("_", "-").title()
        else:
            continue
        hidden = name.lower() in CLIENT_ADDRESS_HEADERS or scrubber.sensitive(name)
        # A value can carry a URL with its query string (Referer: ...?key=...).
        headers[name] = FILTERED if hidden else scrubber.scrub_string(str(value)[:2048])
    return {
        "method": request.method,
        "url": url,
        "query_string": scrubber.scrub_query(meta.get("QUERY_STRING", "")[:4096]),
        "headers": headers,
        "env": {k: str(meta[k]) for k in ("SERVER_NAME", "SERVER_PORT") if k in meta},
    }


def _capture_request_exception(sender: Any = None, request: Any = None, **kwargs: Any) -> None:
    """Receiver of Django's got_request_exception: the exception being handled, as an
    unhandled error of the request (Django answers it 500)."""
    client = sentry_sdk.get_client()
    # Only for the client init() set up, and never twice: a client with sentry-sdk's own
    # Django integration (someone else's set-up in this process) reports these itself.
    if (
        request is None
        or not isinstance(client.transport, LocalTransport)
        or client.get_integration("django") is not None
    ):
        return
    exc_info = sys.exc_info()
    if exc_info[1] is None:
        return
    with capture_internal_exceptions():  # never let capture break Django's 500 handling
        event, hint = event_from_exception(
            exc_info, client_options=client.options, mechanism={"type": "django", "handled": False}
        )
        event["request"] = request_data(request)
        match = getattr(request, "resolver_match", None)
        route = (match.route or match.view_name) if match is not None else None
        if route:
            event["transaction"] = route
            event["transaction_info"] = {"source": "route"}
        sentry_sdk.capture_event(event, hint=hint)


def init(*, forward_dsn: str | None = None, environment: str | None = None) -> LocalTransport:
    """Start capturing our own errors. Returns the transport (tests flush it)."""
    transport = LocalTransport()
    dsn = settings.SENTRY_DSN if forward_dsn is None else forward_dsn
    sentry_sdk.init(
        dsn=dsn or None,
        transport=transport,
        release=f"opsconsole@{__version__}",
        environment=environment or settings.OPS_ENVIRONMENT,
        # Only what error capture needs. The auto-enabled integrations (Redis, httpx, boto3,
        # ...) record breadcrumbs and spans on every call, a cost on every ingested event
        # (docs/PERFORMANCE.md, Error ingest) for data nobody reads; the Django integration
        # is replaced by _capture_request_exception (see the module docstring).
        integrations=[
            CeleryIntegration(),
            LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
        ],
        auto_enabling_integrations=False,
        before_send=CaptureLimits(  # type: ignore[arg-type]
            settings.OPS_ERRORS_CAPTURE_PER_MINUTE, settings.OPS_ERRORS_CAPTURE_SECURITY_PER_MINUTE
        ),
        # Frame locals hold whatever the code had in hand (credentials, personal data): none
        # are sent unless the operator turns them on.
        include_local_variables=settings.OPS_ERRORS_CAPTURE_LOCALS,
        auto_session_tracking=False,
        send_client_reports=False,
        traces_sample_rate=None,
        default_integrations=True,
    )
    # Our own ingest path logs about failures it already handles (spool, retries).
    for name in (
        "errors.capture",
        "errors.digest",
        "errors.own",
        "errors.queueing",
        "errors.services",
    ):
        ignore_logger(name)
    # Django logs every 500 to django.request; the receiver captures it with the request.
    ignore_logger("django.request")
    ignore_logger("django.server")
    got_request_exception.connect(_capture_request_exception, dispatch_uid="ops-errors-capture")
    if dsn:
        transport.forward = HttpTransport(sentry_sdk.get_client().options)
    return transport
