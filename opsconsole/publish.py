"""Queueing a task by name from a request, with a bounded cost when the broker is not there.

Celery's own publish retries for seconds, and its pooled connection's default channel retries
connecting: a dead or silent broker would hold a web request that long. Here a publish opens one
connection of its own with the short OPS_BROKER_PUBLISH_TIMEOUT and never retries; the caller
decides what a failure means (everything that publishes this way has a periodic task that
catches up with what was not queued).
"""

from __future__ import annotations

from typing import Any

from celery import current_app
from django.conf import settings


def send_task_bounded(name: str, args: tuple[Any, ...] = (), **options: Any) -> None:
    """Queue task `name` with `args`; raises (kombu's or the socket's error) within about
    OPS_BROKER_PUBLISH_TIMEOUT when the broker refuses, is unreachable or does not answer."""
    app = current_app
    seconds = settings.OPS_BROKER_PUBLISH_TIMEOUT
    transport = dict(app.conf.broker_transport_options or {})
    if not str(app.conf.broker_url).startswith(("filesystem", "memory")):
        transport.update(socket_connect_timeout=seconds, socket_timeout=seconds, max_retries=0)
    with app.connection_for_write(transport_options=transport, connect_timeout=seconds) as conn:
        # The worker applies the task's own options (time limits, queue) by its name.
        app.send_task(name, args, retry=False, producer=conn.Producer(), **options)
