from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily, Metric


def collect() -> Iterable[Metric]:
    yield GaugeMetricFamily("backup_last_success_age_seconds", "Age of the last backup.", value=42)
