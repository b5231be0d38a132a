"""One resource sampler per host, started by every web, worker and beat process.

Each process that starts (the first request of a web worker, a Celery worker, beat) starts a
daemon thread. The threads of one host compete for an exclusive lock on a file named after the
host and the database (fcntl.flock, non-blocking): the one that holds it samples the host every
OPS_HOST_SAMPLE_INTERVAL; the others retry at the same pace, so when the holder's process ends
(the kernel releases its lock) another process of the host takes over within one interval. Web-
only and worker-only hosts are thus sampled too; a host that runs neither (a database server)
runs `manage.py sample_host`.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import close_old_connections, connections

logger = logging.getLogger("opsconsole.metrics")

_started = threading.Lock()
_sampler: HostSampler | None = None


def lock_path() -> Path:
    """The lock file of this host's sampler for this console's database."""
    db = connections["default"].settings_dict
    scope = f"{settings.OPS_HOST_NAME}|{db.get('HOST') or ''}|{db.get('PORT') or ''}|{db['NAME']}"
    digest = hashlib.sha256(scope.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"opsconsole-sampler-{digest}.lock"


class HostSampler(threading.Thread):
    def __init__(self, interval: float) -> None:
        super().__init__(name="ops-host-sampler", daemon=True)
        self.interval = interval
        self.stopping = threading.Event()
        self.lock_file: IO[bytes] | None = None

    def holds_lock(self) -> bool:
        if self.lock_file is not None:
            return True
        handle = open(lock_path(), "ab")  # noqa: SIM115  (held for the process's life)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self.lock_file = handle
        logger.info("sampling host %s from process %s", settings.OPS_HOST_NAME, os.getpid())
        return True

    def sample_once(self) -> None:
        from metrics.collectors import collect_resource_usage

        try:
            close_old_connections()
            if self.holds_lock():
                collect_resource_usage(skip_if_sampled=True)
        except Exception:  # a database outage must not end the thread
            logger.warning("could not sample host %s", settings.OPS_HOST_NAME, exc_info=True)
        finally:
            close_old_connections()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.sample_once()
            self.stopping.wait(self.interval)


def start_host_sampler(**kwargs: Any) -> HostSampler | None:
    """Starts this process's sampler thread once (a signal receiver, hence **kwargs)."""
    global _sampler
    if not settings.OPS_HOST_SAMPLER:
        return None
    with _started:
        if _sampler is None or not _sampler.is_alive():
            _sampler = HostSampler(settings.OPS_HOST_SAMPLE_INTERVAL)
            _sampler.start()
    return _sampler


def start_on_first_request(**kwargs: Any) -> None:
    """A web process starts its sampler with its first request, then stops listening (a
    request pays for this once per process, not every time)."""
    from django.core.signals import request_started

    request_started.disconnect(start_on_first_request, dispatch_uid=FIRST_REQUEST_UID)
    start_host_sampler()


FIRST_REQUEST_UID = "metrics-host-sampler-first-request"


def connect() -> None:
    """Wires the sampler to process start-up: web (first request), Celery worker and beat."""
    from celery.signals import beat_init, worker_ready
    from django.core.signals import request_started

    if not settings.OPS_HOST_SAMPLER:
        return
    request_started.connect(start_on_first_request, dispatch_uid=FIRST_REQUEST_UID)
    worker_ready.connect(start_host_sampler, dispatch_uid="metrics-host-sampler-worker")
    beat_init.connect(start_host_sampler, dispatch_uid="metrics-host-sampler-beat")
