"""Uptime from the stored health runs, with time no run vouches for counted as unknown.

A run vouches for its status from its time until the next run, and for at most GRACE_RUNS
health-check intervals: when the scheduler stops (beat down, worker down) the time after that
is unknown, not up. Uptime is up time over known time; coverage is known time over the period.
Everything is summed in the database (window function LEAD), never row by row in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection

from health.models import ComponentResult, HealthCheck, Status

# A run vouches for its status for this many check intervals at most.
GRACE_RUNS = 2
# Status ranks, worst last: a timeline bucket shows the worst status measured in it.
RANK = {Status.PASS: 1, Status.WARN: 2, Status.FAIL: 3}
RANKED = {rank: str(status) for status, rank in RANK.items()}


def check_interval() -> float:
    """Seconds between scheduled health runs (OPS_HEALTH_CHECK_INTERVAL)."""
    return float(settings.OPS_HEALTH_CHECK_INTERVAL)


@dataclass(frozen=True)
class Uptime:
    """Seconds up (pass or warn), down (fail) and unknown (no run) within a period."""

    up: float
    down: float
    unknown: float

    @property
    def known(self) -> float:
        return self.up + self.down

    @property
    def total(self) -> float:
        return self.known + self.unknown

    @property
    def percent(self) -> float | None:
        """Up time over known time; None when no run covers any of the period."""
        return 100.0 * self.up / self.known if self.known > 0 else None

    @property
    def coverage(self) -> float:
        """Percent of the period some run vouches for."""
        return 100.0 * self.known / self.total if self.total > 0 else 0.0

    def budget_left_minutes(self, slo_percent: float) -> float:
        """Downtime the SLO still allows in this period, in minutes (negative: overspent)."""
        allowed = (1 - slo_percent / 100.0) * self.total
        return (allowed - self.down) / 60.0


def _epoch(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM {column})"
    return f"((julianday({column}) - 2440587.5) * 86400.0)"


def _functions() -> tuple[str, str]:
    return ("GREATEST", "LEAST") if connection.vendor == "postgresql" else ("MAX", "MIN")


def _params(start: datetime, end: datetime, grace: float) -> dict[str, Any]:
    adapt = connection.ops.adapt_datetimefield_value
    return {
        "since": adapt(start - timedelta(seconds=grace)),
        "until": adapt(end),
        "start_e": start.timestamp(),
        "end_e": end.timestamp(),
        "grace": grace,
    }


def _covered_sql(table: str, group: str) -> str:
    """Seconds each (group, status) covers within [start, end); `group` is "" or a column."""
    greatest, least = _functions()
    part = f"PARTITION BY {group} " if group else ""
    cols = f"{group}, " if group else ""
    return (
        f"SELECT {cols}status, SUM({greatest}(0, {least}(COALESCE(nxt, %(end_e)s), "  # noqa: S608
        f"t + %(grace)s, %(end_e)s) - {greatest}(t, %(start_e)s))) FROM ("
        f"SELECT {cols}status, {_epoch('created_at')} AS t, "
        f"{_epoch(f'LEAD(created_at) OVER ({part}ORDER BY created_at)')} AS nxt "
        f"FROM {table} WHERE created_at >= %(since)s AND created_at < %(until)s"
        f") AS runs GROUP BY {cols}status"
    )


def _to_uptime(by_status: dict[str, float], total: float) -> Uptime:
    down = by_status.get(Status.FAIL, 0.0)
    up = sum(v for s, v in by_status.items() if s != Status.FAIL)
    return Uptime(up=up, down=down, unknown=max(0.0, total - up - down))


def overall(start: datetime, end: datetime) -> Uptime:
    """The whole system's uptime over [start, end), from each run's overall status."""
    grace = GRACE_RUNS * check_interval()
    table = connection.ops.quote_name(HealthCheck._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(_covered_sql(table, ""), _params(start, end, grace))
        by_status = {status: float(seconds or 0) for status, seconds in cursor.fetchall()}
    return _to_uptime(by_status, (end - start).total_seconds())


def per_component(start: datetime, end: datetime) -> dict[str, Uptime]:
    """Each component's uptime over [start, end)."""
    grace = GRACE_RUNS * check_interval()
    table = connection.ops.quote_name(ComponentResult._meta.db_table)
    found: dict[str, dict[str, float]] = {}
    with connection.cursor() as cursor:
        cursor.execute(_covered_sql(table, "component"), _params(start, end, grace))
        for component, status, seconds in cursor.fetchall():
            found.setdefault(component, {})[status] = float(seconds or 0)
    total = (end - start).total_seconds()
    return {c: _to_uptime(s, total) for c, s in sorted(found.items())}


def timeline(start: datetime, end: datetime, buckets: int) -> dict[str, list[str | None]]:
    """Per component, the worst status of each of `buckets` equal slices of [start, end)
    (None: no run in that slice)."""
    span = (end - start).total_seconds()
    width = span / buckets
    table = connection.ops.quote_name(ComponentResult._meta.db_table)
    index = f"({_epoch('created_at')} - %(start_e)s) / %(width)s"
    index = f"FLOOR({index})" if connection.vendor == "postgresql" else f"CAST({index} AS INTEGER)"
    rank = " ".join(f"WHEN '{status}' THEN {n}" for status, n in RANK.items())
    sql = (
        f"SELECT component, {index} AS b, MAX(CASE status {rank} ELSE 0 END) "  # noqa: S608
        f"FROM {table} WHERE created_at >= %(since)s AND created_at < %(until)s "
        "GROUP BY component, b"
    )
    adapt = connection.ops.adapt_datetimefield_value
    params = {"since": adapt(start), "until": adapt(end), "start_e": start.timestamp(),
              "width": width}  # fmt: skip
    rows: dict[str, list[str | None]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for component, bucket, worst in cursor.fetchall():
            row = rows.setdefault(component, [None] * buckets)
            b = int(bucket)
            if 0 <= b < buckets and worst in RANKED:
                row[b] = RANKED[worst]
    return dict(sorted(rows.items()))
