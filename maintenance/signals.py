"""Events the maintenance app sends.

maintenance_window_started(sender, window_id: int, message: str, silence_keys: list[str],
                           ends_at: datetime)
maintenance_window_ended(sender, window_id: int)
Each is sent exactly once per window.
"""

from django.dispatch import Signal

maintenance_window_started = Signal()
maintenance_window_ended = Signal()
