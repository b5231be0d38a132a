"""A guard for a worker crash when the Redis broker goes away (kombu 5.7 with Celery 5.7).

On losing the broker, Celery's consumer first collects the connection (which detaches the
transport from it) and then closes it. Closing the channel puts the worker's unacknowledged
messages back over that detached connection and raises AttributeError, which Celery treats as
unrecoverable: the whole worker exits instead of reconnecting. Seen in
tests/test_failing_parts.py whenever Redis stops while a message is in flight.

With the connection gone nothing can be put back anyway: the copies stay in Redis's unacked
set, and kombu restores them after the visibility timeout (if Redis kept them).
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("opsconsole.celery")


def install() -> None:
    from kombu.transport import redis

    original = redis.QoS.restore_unacked
    if getattr(original, "ops_guarded", False):
        return

    def restore_unacked(self: Any, client: Any = None) -> Any:
        if client is None and self.channel.connection.client is None:
            logger.warning(
                "broker connection lost with %d unacknowledged message(s); Redis keeps them "
                "and they are redelivered after the visibility timeout",
                len(self._delivered),
            )
            self._delivered.clear()
            return None
        return original(self, client)

    restore_unacked.ops_guarded = True  # type: ignore[attr-defined]
    redis.QoS.restore_unacked = restore_unacked  # type: ignore[method-assign]
