"""Events the metrics app sends.

performance_threshold_exceeded(sender, metric: str, host: str, level: str, value: float,
                               threshold: float, unit: str)
    once when a metric crosses a threshold (level "warning" or "critical") and stays there
    for the threshold's sustained-for period; again only if the level rises.
performance_threshold_recovered(sender, metric: str, host: str, value: float, unit: str)
    once when the metric is back under the recovery level.
Alert key convention: f"threshold:{metric}:{host}".
host_missing(sender, host: str, last_seen: datetime, missing_after: float)
    once when a host that reported resource samples has sent none for `missing_after` seconds.
host_recovered(sender, host: str, forgotten: bool)
    once when a missing host reports again, or is deleted by an operator (forgotten=True).
Alert key convention: f"host:{host}:missing".
"""

from django.dispatch import Signal

performance_threshold_exceeded = Signal()
performance_threshold_recovered = Signal()
host_missing = Signal()
host_recovered = Signal()
