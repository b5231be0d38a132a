"""The metrics app's verbs; tasks, commands and views call these."""

from __future__ import annotations

from metrics.collectors import collect_performance_metrics, collect_resource_usage
from metrics.reports import get_performance_report, get_resource_report
from metrics.rollups import cleanup, roll_up, series

__all__ = [
    "cleanup",
    "collect_performance_metrics",
    "collect_resource_usage",
    "get_performance_report",
    "get_resource_report",
    "roll_up",
    "series",
]
