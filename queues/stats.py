"""Per task name over a period: throughput per minute, runtime p50/p95, failure rate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import QuerySet, Sum

from metrics.histogram import SLOTS, quantile
from queues.models import TaskHour, TaskMinute

PERIODS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
DEFAULT_PERIOD = "1h"
SHORT_PERIOD = "1h"  # read from minute rows; the others from hour rows


class BadPeriod(ValueError):
    pass


def parse_period(value: str | None) -> str:
    """The period asked for (one of PERIODS), DEFAULT_PERIOD when none; BadPeriod otherwise."""
    if value in (None, ""):
        return DEFAULT_PERIOD
    if value not in PERIODS:
        raise BadPeriod(f"unknown period {value[:20]!r}: use one of {', '.join(PERIODS)}")
    return value


@dataclass
class TaskStats:
    name: str
    runs: int
    failures: int
    per_minute: float
    p50_ms: float | None
    p95_ms: float | None
    mean_ms: float | None

    @property
    def failure_rate(self) -> float | None:
        return self.failures / self.runs if self.runs else None


def summarize(
    name: str, runs: int, failures: int, runtime_sum: float, counts: list[int], minutes: float
) -> TaskStats:
    p50, p95 = quantile(0.5, counts), quantile(0.95, counts)
    return TaskStats(
        name=name,
        runs=runs,
        failures=failures,
        per_minute=runs / minutes if minutes > 0 else 0.0,
        p50_ms=None if p50 is None else p50 * 1000,
        p95_ms=None if p95 is None else p95 * 1000,
        mean_ms=runtime_sum / runs * 1000 if runs else None,
    )


def task_stats(period: str, now: datetime) -> list[TaskStats]:
    """Every task name that ran in `period` before `now`, busiest first.

    1 h reads minute rows; longer periods read hour rows from the start of the hour the period
    begins in (so "24 h" covers up to 25 h, and the rate divides by the minutes covered).
    """
    since = now - PERIODS[period]
    rows: QuerySet[Any]
    if period == SHORT_PERIOD:
        rows = TaskMinute.objects.filter(minute__gte=since, minute__lt=now)
    else:
        since = since.replace(minute=0, second=0, microsecond=0)
        rows = TaskHour.objects.filter(hour__gte=since, hour__lt=now)
    totals = rows.values("task_name").annotate(
        runs=Sum("count"), failed=Sum("failures"), seconds=Sum("runtime_sum")
    )
    histograms: dict[str, list[int]] = {}
    for name, histogram in rows.values_list("task_name", "histogram").iterator(chunk_size=2000):
        summed = histograms.setdefault(name, [0] * SLOTS)
        for i, value in enumerate((histogram or [])[:SLOTS]):
            summed[i] += value
    minutes = (now - since).total_seconds() / 60
    found = [
        summarize(
            t["task_name"],
            t["runs"] or 0,
            t["failed"] or 0,
            t["seconds"] or 0.0,
            histograms.get(t["task_name"], [0] * SLOTS),
            minutes,
        )  # fmt: skip
        for t in totals
    ]
    return sorted(found, key=lambda s: (-s.runs, s.name))
