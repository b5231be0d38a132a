"""In-process throttles for our own error capture: a token bucket, and a stderr note that a
flood cannot turn into a flood of log lines."""

from __future__ import annotations

import sys
import threading
import time


class TokenBucket:
    """At most `per_minute` takes a minute on average, in bursts of at most `per_minute`.
    Per process and thread-safe; 0 refuses everything."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.tokens = float(per_minute)
        self.rate = per_minute / 60.0
        self.updated = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens < 1:
                return False
            self.tokens -= 1
            return True


# One stderr line a minute at most when something is dropped: a flood must not flood the log.
_drop_notes = TokenBucket(1)


def note(message: str) -> None:
    """Say on stderr that something was dropped, at most once a minute per process."""
    if _drop_notes.take():
        print(f"ops-console: {message}", file=sys.stderr)
