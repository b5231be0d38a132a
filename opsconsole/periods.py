"""The periods a console page can show (?period=), shared by the dashboard and the timeline."""

from __future__ import annotations

from datetime import timedelta

PERIODS = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
DEFAULT_PERIOD = "24h"


class BadPeriod(ValueError):
    pass


def parse_period(raw: str | None, default: str = DEFAULT_PERIOD) -> str:
    """A period name from a query string: the default when absent, BadPeriod when unknown."""
    period = raw or default
    if period not in PERIODS:
        raise BadPeriod(f"period must be one of {', '.join(PERIODS)} (got {period[:20]!r})")
    return period
