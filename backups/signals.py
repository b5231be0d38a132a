"""Events the backups app sends.

backup_completed(sender, backup_id: int, kind: str, size: int, duration: float)
backup_failed(sender, backup_id: int | None, kind: str, reason: str, phase: str)
    phase is "backup", "verify", "restore" or "retention".
backup_verified(sender, backup_id: int, kind: str, restore_seconds: float)
    a verification restore succeeded (clears "backup:verify").
Alert key convention: "backup:failed" (resolved by the next backup_completed), and
"backup:verify" for verification.
"""

from django.dispatch import Signal

backup_completed = Signal()
backup_failed = Signal()
backup_verified = Signal()
