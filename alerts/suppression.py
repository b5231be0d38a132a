"""What mutes an alert key right now: admin silences and active maintenance windows."""

from __future__ import annotations

import fnmatch
from datetime import datetime

from maintenance.models import MaintenanceWindow

from .models import Silence


class Suppressor:
    """Active silences and windows loaded once, then matched against many keys."""

    def __init__(self, now: datetime) -> None:
        self.silences = list(Silence.objects.filter(starts_at__lte=now, ends_at__gt=now))
        self.windows = list(
            MaintenanceWindow.objects.filter(starts_at__lte=now, ends_at__gt=now).exclude(
                silence_keys=[]
            )
        )

    def reason(self, key: str) -> str:
        """Why `key` is muted ('silence #3: reason'), or '' when it is not."""
        for silence in self.silences:
            if silence.matches(key):
                return f"silence #{silence.pk}: {silence.reason}"[:255]
        for window in self.windows:
            patterns = window.silence_keys if isinstance(window.silence_keys, list) else []
            if any(fnmatch.fnmatchcase(key, str(p)) for p in patterns):
                return f"maintenance window #{window.pk}: {window.message}"[:255]
        return ""


def suppression_reason(key: str, now: datetime) -> str:
    return Suppressor(now).reason(key)
