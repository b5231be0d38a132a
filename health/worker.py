"""A consumer bootstep that records this worker's heartbeat on the worker's own timer.

Celery's event heartbeats only run with events enabled (-E), which costs broker traffic on
every task; this writes one row every HEARTBEAT_INTERVAL seconds instead. The queue health
check reads the row's age, so a probe never broadcasts a ping and waits for replies.
"""

from __future__ import annotations

from typing import Any

from celery import bootsteps

HEARTBEAT_INTERVAL = 10.0


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
