"""The metrics app's verbs; tasks, commands and views call these."""

from __future__ import annotations

import logging

from metrics.collectors import collect_performance_metrics, collect_resource_usage
from metrics.reports import get_performance_report, get_resource_report
from metrics.rollups import cleanup, roll_up, series

logger = logging.getLogger("opsconsole.metrics")


def ask_every_worker_host() -> bool:
    """Broadcast the host-sampling control command to every worker (no reply awaited).
    Returns False when the broker cannot broadcast; this host was sampled anyway."""
    from celery import current_app as app

    try:
        app.control.broadcast("ops_collect_resource_usage", reply=False)
    except Exception:
        logger.warning("could not ask the other workers to sample their hosts", exc_info=True)
        return False
    return True


__all__ = [
    "ask_every_worker_host",
    "cleanup",
    "collect_performance_metrics",
    "collect_resource_usage",
    "get_performance_report",
    "get_resource_report",
    "roll_up",
    "series",
]
