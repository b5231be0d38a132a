"""Shared bits of the backup commands: progress on a TTY, sizes, errors as one line."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


class TtyProgress:
    """A one-line progress display on stderr, shown only when stderr is a terminal."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.started = time.monotonic()
        self._last = 0.0

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.2:
            return
        self._last = now
        if phase == "swap":  # a count of targets replaced so far, not bytes
            self.stream.write(f"\rswapping in: {done} of {total} done   ")
            self.stream.flush()
            return
        rate = done / max(now - self.started, 1e-6)
        part = f"{human_size(done)}"
        if total:
            part += f" of {human_size(total)} ({100 * done / total:.0f}%)"
        self.stream.write(f"\r{phase}: {part}, {human_size(rate)}/s   ")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled and self._last:
            self.stream.write("\r" + " " * 70 + "\r")
            self.stream.flush()


def backup_row(backup: Any) -> dict[str, Any]:
    return {
        "id": backup.pk,
        "kind": backup.kind,
        "status": backup.status,
        "restorable": backup.is_restorable,
        "name": backup.name,
        "storage": backup.storage,
        "engine": backup.engine,
        "started_at": backup.started_at.isoformat(),
        "finished_at": backup.finished_at.isoformat() if backup.finished_at else None,
        "duration": backup.duration,
        "size": backup.size,
        "encrypted": backup.encrypted,
        "artifacts": backup.artifacts,
        "verified_at": backup.verified_at.isoformat() if backup.verified_at else None,
        "verification_failed": backup.verification_failed,
        "verify_error": backup.verify_error,
        "restore_seconds": backup.restore_seconds,
        "error": backup.error,
    }
