"""Asking a worker to digest soon: the digest task queued by its name, cheaply and throttled.

By name, so that the ingest path does not import the tasks module (which imports the capture,
which ingests through the services: a cycle).
"""

from __future__ import annotations

import logging
import time

from celery import current_app as app
from django.conf import settings

logger = logging.getLogger(__name__)
DIGEST_TASK = "errors.tasks.digest_inbox"
KICK_INTERVAL = 0.5
# After a failed kick, skip kicks this long: a down broker costs one request per process per
# back-off its publish timeout, not every request (beat digests what waits meanwhile).
KICK_BACKOFF = 5.0
_last_kick = 0.0


def kick_digest() -> None:
    """Ask a worker to digest soon. At most one message per process per KICK_INTERVAL (none
    for KICK_BACKOFF after a failure): the digest drains everything, and the beat schedule
    covers a lost or throttled kick."""
    global _last_kick
    now = time.monotonic()
    if now - _last_kick < KICK_INTERVAL:
        return
    _last_kick = now
    # This runs inside an ingest request: a dead or silent broker must cost it well under a
    # second. delay() would retry the publish for seconds (and the pooled connection's default
    # channel retries connecting), so: one connection of our own with short timeouts, no retry.
    seconds = settings.OPS_BROKER_PUBLISH_TIMEOUT
    options = dict(app.conf.broker_transport_options or {})
    if not app.conf.broker_url.startswith(("filesystem", "memory")):
        options.update(socket_connect_timeout=seconds, socket_timeout=seconds, max_retries=0)
    try:
        with app.connection_for_write(transport_options=options, connect_timeout=seconds) as conn:
            app.send_task(DIGEST_TASK, retry=False, producer=conn.Producer(), ignore_result=True)
    except Exception as exc:  # the event is already stored; beat or worker start picks it up
        _last_kick = time.monotonic() + KICK_BACKOFF - KICK_INTERVAL
        logger.warning("could not enqueue the error digest: %s", exc)
