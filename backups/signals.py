"""Events the backups app sends.

backup_completed(sender, backup_id: int, kind: str, size: int, duration: float)
backup_failed(sender, backup_id: int | None, kind: str, reason: str, phase: str)
    phase is "backup", "verify", "restore" or "retention".
backup_verified(sender, backup_id: int, kind: str, restore_seconds: float)
    a verification restore succeeded (clears "backup:verify").
Alert key convention: "backup:failed" (resolved by the next backup_completed), and
"backup:verify" for verification.

Send them with `notify`: a receiver that fails never aborts the run that sent the event.
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

from backups.models import Backup

logger = logging.getLogger(__name__)

backup_completed = Signal()
backup_failed = Signal()
backup_verified = Signal()


def notify(signal: Signal, **kwargs: Any) -> None:
    """Send a signal; a receiver that fails never aborts the backup or cleanup that sent it."""
    for receiver, result in signal.send_robust(sender=Backup, **kwargs):
        if isinstance(result, Exception):
            logger.error(
                "backups: receiver %s failed: %s",
                getattr(receiver, "__qualname__", receiver),
                type(result).__name__,
            )
