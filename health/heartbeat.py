"""Worker heartbeat rows (written by health.worker.HeartbeatStep inside each worker)."""

from __future__ import annotations

import logging
import os

from django.db import DatabaseError, close_old_connections
from django.utils import timezone

logger = logging.getLogger("opsconsole.health")


def write_heartbeat(hostname: str, *, force: bool = True) -> None:
    from health.models import WorkerHeartbeat

    try:
        close_old_connections()
        WorkerHeartbeat.objects.update_or_create(
            hostname=hostname[:255],
            defaults={"last_seen": timezone.now(), "pid": os.getpid()},
        )
    except DatabaseError as exc:
        logger.warning("could not record the worker heartbeat: %s", type(exc).__name__)


def forget_worker(hostname: str) -> None:
    """A worker that shuts down cleanly removes its row; a crashed one ages out."""
    from health.models import WorkerHeartbeat

    try:
        close_old_connections()
        WorkerHeartbeat.objects.filter(hostname=hostname[:255]).delete()
    except DatabaseError:
        logger.info("could not remove the heartbeat of %s; it will age out", hostname)
