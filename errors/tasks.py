"""Celery tasks: thin callers of errors.services."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.signals import worker_ready

from errors import services
from errors.capture import drain_spool


@shared_task(name="errors.tasks.digest_inbox", ignore_result=True)
def digest_inbox() -> int:
    """Digest accepted events (and our own spooled ones) into issues and reports."""
    drain_spool()
    return services.digest()


@worker_ready.connect
def _digest_on_start(sender: Any = None, **kwargs: Any) -> None:
    # Events accepted while no worker was running are digested as soon as one starts.
    digest_inbox.delay()
