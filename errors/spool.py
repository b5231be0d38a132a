"""The spool: envelopes of our own errors kept on disk while the database will not take them.

Capped and private: OPS_ERRORS_SPOOL_MAX_FILES / _MAX_BYTES bound it, files are readable by
the console's user only. Writers in several processes share it under a file lock. The next
digest run ingests what it holds (errors.capture.drain_spool).
"""

from __future__ import annotations

import fcntl
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from errors.throttle import note


def spool_dir() -> Path:
    return Path(settings.OPS_VAR_DIR) / "errors-spool"


@contextmanager
def _spool_locked(folder: Path) -> Iterator[None]:
    """Serialise spool writers across processes, so the cap check and the write are one step."""
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _spool_usage(folder: Path) -> tuple[int, int]:
    """Files and bytes in the spool (leftover .tmp files of a crashed writer count too)."""
    files = size = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name != ".lock" and entry.is_file(follow_symlinks=False):
                files += 1
                size += entry.stat(follow_symlinks=False).st_size
    return files, size


def _write_private(folder: Path, data: bytes) -> None:
    # Envelopes hold request data: readable by the console's user only, whatever the umask.
    tmp = folder / f".{uuid.uuid4().hex}.tmp"
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
        f.write(data)
    tmp.rename(folder / f"{uuid.uuid4().hex}.envelope")


def spool(data: bytes) -> bool:
    """Keep an envelope on disk until the database takes it. Never raises, never logs.

    The spool is capped (OPS_ERRORS_SPOOL_MAX_FILES / _MAX_BYTES). When full, the new envelope
    is dropped and the oldest are kept: the first errors of an outage usually name its cause,
    the later ones its consequences. Returns whether the envelope was kept."""
    try:
        folder = spool_dir()
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if folder.stat().st_mode & 0o077:
            folder.chmod(0o700)
        with _spool_locked(folder):
            files, size = _spool_usage(folder)
            if (
                files + 1 > settings.OPS_ERRORS_SPOOL_MAX_FILES
                or size + len(data) > settings.OPS_ERRORS_SPOOL_MAX_BYTES
            ):
                note(f"error spool full ({files} files, {size} bytes): dropped an envelope")
                return False
            _write_private(folder, data)
            return True
    except OSError as exc:  # last resort: stderr, so it is at least in the process log
        print(f"ops-console: could not spool an error envelope: {exc}", file=sys.stderr)
        return False
