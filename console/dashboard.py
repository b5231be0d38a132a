"""The figures of the console's home page, read from what every app stores.

Each card is a small function returning a dict (or None when its viewer may not see it);
every figure comes from an aggregate or an indexed "latest row" read, so the page costs a
bounded number of queries however much history is stored. A figure nothing measured is None,
and the template says "no data".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Q
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from alerts.models import Alert
from backups.models import Backup
from errors.models import Issue
from health import uptime
from health.models import ComponentState, HealthCheck, Status, WorkerHeartbeat
from maintenance.markers import chart_markers
from maintenance.models import MaintenanceState, MaintenanceWindow
from metrics.models import PerformanceMetric, ResourceUsage, Threshold
from metrics.rollups import series
from opsconsole import charts
from opsconsole.periods import PERIODS

# Hosts are discovered among the samples of the last ... (raw samples are kept 7 days).
HOST_DISCOVERY = timedelta(days=7)
CHART_WIDTH, CHART_HEIGHT = 560, 170
# The firing alerts a card lists by name (the count covers them all).
ALERTS_LISTED = 5


def link(name: str, *args: Any) -> str | None:
    """The URL of a named page, or None where that page does not exist (yet)."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


@dataclass
class Viewer:
    """Who looks: each card is shown only with the view permission of what it reads."""

    request: HttpRequest

    def may(self, perm: str) -> bool:
        return bool(self.request.user.has_perm(perm))


# Uptime over a period this long or longer is computed once per health run (it reads a month
# of runs) and kept for a minute at most.
CACHE_UPTIME_FROM = timedelta(days=7)


def overall_uptime(span: timedelta, now: datetime, last_run: HealthCheck | None) -> uptime.Uptime:
    if span < CACHE_UPTIME_FROM or last_run is None:
        return uptime.overall(now - span, now)
    key = f"console:uptime:{int(span.total_seconds())}:{last_run.pk}"
    found = cache.get(key)
    if isinstance(found, uptime.Uptime):
        return found
    result = uptime.overall(now - span, now)
    cache.set(key, result, 60)
    return result


def status_card(now: datetime) -> dict[str, Any]:
    states = list(ComponentState.objects.order_by("component"))
    last_run = HealthCheck.objects.only("created_at", "status", "details").first()
    failing = [s.component for s in states if s.status == Status.FAIL]
    warning = [s.component for s in states if s.status == Status.WARN]
    overall = Status.FAIL if failing else Status.WARN if warning else Status.PASS
    slo = settings.OPS_SLO_TARGET
    windows = []
    for label, span in (("24 h", timedelta(hours=24)), ("30 d", timedelta(days=30))):
        up = overall_uptime(span, now, last_run)
        windows.append(
            {
                "label": label,
                "percent": up.percent,
                "coverage": up.coverage,
                "unknown_minutes": up.unknown / 60.0,
                "budget_left_minutes": up.budget_left_minutes(slo) if up.known else None,
                "meets_slo": up.percent is not None and up.percent >= slo,
            }
        )
    return {
        "states": states,
        "overall": str(overall) if states else None,
        "failing": failing,
        "warning": warning,
        "last_run": last_run,
        "slo": slo,
        "uptime": windows,
        "url": link("admin:health_healthcheck_timeline")
        or link("admin:health_healthcheck_changelist"),
    }


def latest_minute(metrics: tuple[str, ...]) -> dict[str, PerformanceMetric]:
    """The latest app-wide row of each metric (one indexed read each, in one query)."""
    latest: dict[str, PerformanceMetric] = {}
    rows = PerformanceMetric.objects.filter(
        metric__in=metrics, key="", host="", recorded_at__gte=timezone.now() - timedelta(hours=1)
    ).order_by("-recorded_at")[: len(metrics) * 2]
    for row in rows:
        latest.setdefault(row.metric, row)
    return latest


def traffic_card(now: datetime) -> dict[str, Any]:
    """p95 against its target, requests and 5xx per minute: the last measured minute."""
    rows = latest_minute(("response_time_p95_ms", "request_rate_per_s", "error_rate_percent"))
    p95 = rows.get("response_time_p95_ms")
    rate = rows.get("request_rate_per_s")
    errors = rows.get("error_rate_percent")
    target = latency_target()
    requests = rate.value * 60.0 if rate else None
    return {
        "p95_ms": p95.value if p95 else None,
        "p95_at": p95.recorded_at if p95 else None,
        "target_ms": target,
        "p95_ok": p95.value <= target if p95 else None,
        "requests_per_min": requests,
        "errors_per_min": errors.value / 100.0 * errors.samples if errors else None,
        "error_rate": errors.value if errors else None,
        "at": rate.recorded_at if rate else None,
        "url": link("metrics-console"),
    }


def latency_target() -> float:
    """The p95 target: an enabled threshold's warning level on it if set, else the setting."""
    rule = (
        Threshold.objects.filter(metric="response_time_p95_ms", host="", enabled=True)
        .only("warning", "critical")
        .first()
    )
    if rule is not None and (rule.warning or rule.critical):
        return float(rule.warning or rule.critical or 0)
    return float(settings.OPS_LATENCY_TARGET_MS)


def issues_card(now: datetime) -> dict[str, Any]:
    since = now - timedelta(hours=24)
    counts = Issue.objects.aggregate(
        new=Count("id", filter=Q(created_at__gte=since)),
        regressed=Count("id", filter=Q(regressed_at__gte=since)),
    )
    return {**counts, "url": link("admin:errors_issue_changelist")}


def backup_card(now: datetime) -> dict[str, Any]:
    last = (
        Backup.objects.only("status", "started_at", "finished_at", "verified_at", "kind", "error")
        .order_by("-started_at", "-pk")
        .first()
    )
    verified = (
        Backup.objects.filter(status=Backup.Status.VERIFIED, verified_at__isnull=False)
        .only("started_at", "finished_at", "verified_at")
        .order_by("-started_at", "-pk")
        .first()
    )
    interval = float(settings.OPS_BACKUP_MAX_AGE)
    rpo = (now - verified.started_at).total_seconds() if verified else None
    return {
        "last": last,
        "age_seconds": (now - last.started_at).total_seconds() if last else None,
        "last_verified": verified,
        "rpo_seconds": rpo,
        "interval_seconds": interval,
        "rpo_ok": rpo is not None and rpo <= interval,
        "url": link("admin:backups_backup_changelist"),
    }


def latest_sample_per_host() -> list[tuple[str, datetime]]:
    """(host, time of its latest sample) for every host with samples.

    A loose index scan on the (host, recorded_at) unique index: one index probe per host,
    however many samples each host has (a GROUP BY would read them all)."""
    table = connection.ops.quote_name(ResourceUsage._meta.db_table)
    sql = (
        f"WITH RECURSIVE hosts(host) AS ("  # noqa: S608
        f"  (SELECT host FROM {table} ORDER BY host LIMIT 1)"
        f"  UNION ALL"
        f"  SELECT (SELECT r.host FROM {table} r WHERE r.host > hosts.host"
        f"          ORDER BY r.host LIMIT 1) FROM hosts WHERE hosts.host IS NOT NULL)"
        f" SELECT host, (SELECT max(recorded_at) FROM {table} r WHERE r.host = hosts.host)"
        f" FROM hosts WHERE host IS NOT NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        rows = cursor.fetchall()
    out = []
    for host, at in rows:
        if isinstance(at, str):  # SQLite hands back text (UTC)
            at = parse_datetime(at)
        if at is not None and timezone.is_naive(at):
            at = timezone.make_aware(at, UTC)
        out.append((host, at))
    return out


def hosts_card(now: datetime) -> dict[str, Any]:
    """Each host's latest sample; a host silent for OPS_HOST_MISSING_AFTER is flagged missing
    (the same limit the missing-host alert uses, metrics.hosts)."""
    last_seen = {h: at for h, at in latest_sample_per_host() if at >= now - HOST_DISCOVERY}
    latest = Q()
    for host, at in last_seen.items():
        latest |= Q(host=host, recorded_at=at)
    rows = (
        ResourceUsage.objects.filter(latest).order_by("host")
        if last_seen
        else ResourceUsage.objects.none()
    )
    hosts = []
    for row in rows:
        age = (now - row.recorded_at).total_seconds()
        disk = max((d.get("percent", 0) for d in (row.disks or {}).values()), default=None)
        hosts.append(
            {
                "host": row.host,
                "cpu": row.cpu_percent,
                "memory": row.memory_percent,
                "disk": disk,
                "load": row.load_1,
                "last_seen": row.recorded_at,
                "age_seconds": age,
                "missing": age > settings.OPS_HOST_MISSING_AFTER,
            }
        )
    return {
        "hosts": hosts,
        "missing": [h["host"] for h in hosts if h["missing"]],
        "url": link("metrics-console"),
    }


def workers_card(now: datetime, run: HealthCheck | None) -> dict[str, Any]:
    """Workers by heartbeat; queue depth and oldest wait as the last health run measured them
    (the page never probes the broker itself)."""
    cutoff = now - timedelta(seconds=settings.OPS_HEALTH_WORKER_MAX_AGE)
    online = WorkerHeartbeat.objects.filter(last_seen__gte=cutoff).count()
    observed: dict[str, Any] = {}
    if run is not None:
        for o in run.details.get("queue", {}).get("observations", []):
            observed[o.get("measurement")] = o.get("observedValue")
    return {
        "online": online,
        "depth": observed.get("depth"),
        "oldest_wait": observed.get("oldestWait"),
        "measured_at": run.created_at if run else None,
        "url": link("admin:queues_taskfailure_changelist")
        or link("admin:health_workerheartbeat_changelist"),
    }


def alerts_card(now: datetime) -> dict[str, Any]:
    firing = Alert.objects.firing()
    return {
        "count": firing.count(),
        "listed": list(
            firing.only("summary", "severity", "last_fired_at", "key").order_by(
                "-severity", "-last_fired_at"
            )[:ALERTS_LISTED]
        ),
        "url": link("admin:alerts_alert_changelist"),
    }


def maintenance_card(now: datetime) -> dict[str, Any]:
    state = MaintenanceState.objects.filter(singleton=1).first()
    active = (
        MaintenanceWindow.objects.filter(starts_at__lte=now, ends_at__gt=now)
        .order_by("ends_at")
        .first()
    )
    upcoming = MaintenanceWindow.objects.filter(starts_at__gt=now).order_by("starts_at").first()
    return {
        "down": bool(state and state.is_down),
        "since": state.since if state and state.is_down else None,
        "active": active,
        "next": upcoming,
        "url": link("admin:maintenance_maintenancewindow_changelist"),
    }


APP_CHARTS = (
    ("response_time_p95_ms", "p95 latency", "ms", 1.0),
    ("request_rate_per_s", "Requests", "/min", 60.0),
    ("error_rate_percent", "Errors (5xx)", "%", 1.0),
)


def threshold_lines(metric: str, rule: Threshold | None) -> list[charts.Threshold]:
    """Dashed lines for a metric: its enabled rule's levels; p95 always shows its target."""
    levels = [(rule.warning, "warning"), (rule.critical, "critical")] if rule else []
    lines = [charts.Threshold(v, name, name) for v, name in levels if v is not None]
    if metric == "response_time_p95_ms" and not lines:
        lines.append(charts.Threshold(float(settings.OPS_LATENCY_TARGET_MS), "target", "warning"))
    return lines


def period_charts(period: str, now: datetime) -> list[dict[str, Any]]:
    """The page's charts over the selected period, with thresholds and maintenance marked."""
    start = now - PERIODS[period]
    metrics = [m for m, _, _, _ in APP_CHARTS]
    data = series([(m, "", "") for m in metrics], start, now)
    rules = {
        r.metric: r for r in Threshold.objects.filter(metric__in=metrics, host="", enabled=True)
    }
    markers = chart_markers(start, now)
    out = []
    for metric, title, unit, scale in APP_CHARTS:
        points = [
            Scaled(p.at, p.avg * scale, p.min * scale, p.max * scale)
            for p in data[(metric, "", "")]
        ]
        out.append(
            charts.line_chart(
                points,
                title=title,
                unit=unit,
                start=start,
                end=now,
                thresholds=threshold_lines(metric, rules.get(metric)),
                markers=markers,
                width=CHART_WIDTH,
                height=CHART_HEIGHT,
            )
        )
    return out


class Scaled(NamedTuple):
    at: datetime
    avg: float
    min: float
    max: float
