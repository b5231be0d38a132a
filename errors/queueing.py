"""Asking a worker to digest soon: the digest task queued by its name, cheaply and throttled.

By name, so that the ingest path does not import the tasks module (which imports the capture,
which ingests through the services: a cycle).
"""

from __future__ import annotations

import logging
import time

from opsconsole.publish import send_task_bounded

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
    # second.
    try:
        send_task_bounded(DIGEST_TASK, ignore_result=True)
    except Exception as exc:  # the event is already stored; beat or worker start picks it up
        _last_kick = time.monotonic() + KICK_BACKOFF - KICK_INTERVAL
        logger.warning("could not enqueue the error digest: %s", exc)
