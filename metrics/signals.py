"""Events the metrics app sends.

performance_threshold_exceeded(sender, metric: str, host: str, level: str, value: float,
                               threshold: float, unit: str)
    once when a metric crosses a threshold (level "warning" or "critical") and stays there
    for the threshold's sustained-for period; again only if the level rises.
performance_threshold_recovered(sender, metric: str, host: str, value: float, unit: str)
    once when the metric is back under the recovery level.
Alert key convention: f"threshold:{metric}:{host}".
"""

from django.dispatch import Signal

performance_threshold_exceeded = Signal()
performance_threshold_recovered = Signal()
