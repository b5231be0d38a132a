"""Structured logging: JSON lines carrying the request id of the request being served."""

from __future__ import annotations

import gzip
import json
import logging
import logging.handlers
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from opsconsole.context import current_request_id

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id() or "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value if isinstance(value, str | int | float | bool) else repr(value)
        if record.exc_info:
            payload["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


# --- our own log file: rotation with gzip ------------------------------------------------------
def rotated_name(path: Path, index: int) -> Path:
    return path.with_name(f"{path.name}.{index}.gz")


def _compress(source: Path, dest: Path) -> None:
    tmp = dest.with_name(dest.name + ".tmp")
    with open(source, "rb") as src, gzip.open(tmp, "wb") as out:
        shutil.copyfileobj(src, out)
    os.replace(tmp, dest)
    source.unlink()


def rotate_log_file(path: Path, *, keep: int) -> bool:
    """Move `path` to `path.1.gz`, shifting older ones up and keeping `keep` of them.

    Writers notice the move (OpsFileHandler reopens a file that was moved away), so several
    processes can share one log file. Returns False when there was nothing to rotate.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1")
    _drop_beyond(path, keep)
    if not path.exists() or path.stat().st_size == 0:
        return False
    for index in range(keep - 1, 0, -1):
        older = rotated_name(path, index)
        if older.exists():
            os.replace(older, rotated_name(path, index + 1))
    staged = path.with_name(f"{path.name}.rotating")
    os.replace(path, staged)  # atomic: writers keep their handle and reopen on next write
    _compress(staged, rotated_name(path, 1))
    return True


def _drop_beyond(path: Path, keep: int) -> None:
    prefix = f"{path.name}."
    for candidate in path.parent.glob(f"{path.name}.*.gz"):
        number = candidate.name[len(prefix) : -len(".gz")]
        if number.isdigit() and int(number) >= keep:
            candidate.unlink(missing_ok=True)


class OpsFileHandler(logging.handlers.RotatingFileHandler):
    """Our rotating log file: JSON lines, gzip-compressed rotations (`ops.log.1.gz`...).

    It rotates by size when `maxBytes` is set; the daily maintenance job also rotates the file
    with `rotate_log_file`, and this handler reopens the file when it was moved away, so the
    two agree and several processes may write to the same file.
    """

    def __init__(self, filename: str, maxBytes: int = 0, backupCount: int = 7) -> None:  # noqa: N803
        Path(filename).parent.mkdir(parents=True, exist_ok=True)
        super().__init__(filename, maxBytes=maxBytes, backupCount=backupCount, encoding="utf-8")
        self.namer = lambda name: name + ".gz"
        self.rotator = lambda source, dest: _compress(Path(source), Path(dest))
        self._identity = self._stat_identity()

    def _stat_identity(self) -> tuple[int, int] | None:
        try:
            info = os.stat(self.baseFilename)
        except FileNotFoundError:
            return None
        return (info.st_dev, info.st_ino)

    def emit(self, record: logging.LogRecord) -> None:
        if self.stream is not None and self._stat_identity() != self._identity:
            # Someone rotated the file: write to the new one, not the moved one.
            self.acquire()
            try:
                self.stream.close()
                self.stream = self._open()
                self._identity = self._stat_identity()
            finally:
                self.release()
        super().emit(record)

    def doRollover(self) -> None:  # noqa: N802 - logging's name
        super().doRollover()
        self._identity = self._stat_identity()
