"""A consumer bootstep that records this worker's heartbeat on the worker's own timer.

Celery's event heartbeats only run with events enabled (-E), which costs broker traffic on
every task; this writes one row every HEARTBEAT_INTERVAL seconds instead. The queue health
check reads the row's age, so a probe never broadcasts a ping and waits for replies.
"""

from __future__ import annotations

import time
from typing import Any

from celery import bootsteps
from celery.signals import before_task_publish

HEARTBEAT_INTERVAL = 10.0
# Every task message carries its publish time, so the queue check can tell how long the oldest
# waiting message has waited: a worker whose heartbeat is fresh but whose pool takes no work
# (every process busy or stuck) shows as a message that waits too long.
PUBLISHED_AT_HEADER = "ops_published_at"


@before_task_publish.connect
def stamp_published_at(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    if headers is not None:
        headers.setdefault(PUBLISHED_AT_HEADER, time.time())


class HeartbeatStep(bootsteps.StartStopStep):
    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        self.tref: Any = None
        super().__init__(parent, **kwargs)

    def start(self, parent: Any) -> None:
        from health.heartbeat import write_heartbeat

        hostname = str(parent.hostname)
        write_heartbeat(hostname, force=True)
        self.tref = parent.timer.call_repeatedly(
            HEARTBEAT_INTERVAL, write_heartbeat, (hostname,), {"force": True}
        )

    def stop(self, parent: Any) -> None:
        if self.tref is not None:
            parent.timer.cancel(self.tref)
            self.tref = None

    def shutdown(self, parent: Any) -> None:
        from health.heartbeat import forget_worker

        self.stop(parent)
        forget_worker(str(parent.hostname))
