"""The worker side of ingest: drain `InboxEvent` rows in batches into issues and reports.

A batch is claimed first (SKIP LOCKED on PostgreSQL, so workers share the work), bounded by
count and by payload bytes; claiming counts an attempt on each event and commits, so an event
that kills its worker is still counted. The batch is then digested in one transaction: scrub,
group, upsert issues, insert reports, delete the rows; alert signals go after the commit.

A batch that fails or runs past OPS_ERRORS_DIGEST_TIME_LIMIT is digested again event by event;
an event that keeps failing is retried later (with a delay) and, after its last attempt, kept
in the inbox as quarantined with the reason, for an operator to read in the admin. It never
holds up the other events. Failures are logged as warnings, not errors: errors are captured as
events, which would loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from errors import grouping, quotas
from errors.inbox import (
    TASK_TIME_LIMIT,
    Claimed,
    DigestTimeout,
    after_interruption,
    claim,
    failed,
    release,
    time_limit,
)
from errors.models import SEVERITY_RANK, ErrorProject, ErrorReport, InboxEvent, Issue
from errors.prepare import Prepared, prepare, read_event
from errors.scrubbing import Scrubber
from errors.severity import SeverityRules
from errors.signals import critical_error_occurred

logger = logging.getLogger(__name__)
# Reasons in the order they win when one batch triggers several for the same issue.
REASONS = ["regression", "new_issue", "critical", "frequency", "business_hours"]


@dataclass
class _Group:
    events: list[Prepared] = field(default_factory=list)


def insert_ignoring_conflicts(reports: list[ErrorReport]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING through executemany (pipelined by psycopg).

    bulk_create on PostgreSQL sends UNNEST arrays, whose client-side quoting of large JSON
    values costs more than the rest of the digest; executemany avoids it.
    """
    if not reports:
        return
    fields = [f for f in ErrorReport._meta.local_concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(ErrorReport._meta.db_table)} "  # noqa: S608 - our own names
        f"({', '.join(quote(str(f.column)) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT DO NOTHING"
    )
    rows = [
        [f.get_db_prep_save(f.pre_save(r, add=True), connection) for f in fields] for r in reports
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def in_business_hours(project: ErrorProject, when: datetime) -> bool:
    try:
        local = when.astimezone(ZoneInfo(project.business_timezone))
    except (KeyError, ValueError):  # unknown zone name: fall back to UTC
        local = when.astimezone(UTC)
    days = {d.strip() for d in project.business_days.split(",")}
    return (
        str(local.weekday()) in days
        and project.business_hours_start <= local.hour < project.business_hours_end
    )


def issue_url(issue_id: int) -> str:
    return settings.OPS_PUBLIC_URL + reverse("admin:errors_issue_change", args=[issue_id])


class _EventFailed(Exception):
    pass


def _why(exc: BaseException) -> str:
    return (
        str(exc)
        if isinstance(exc, DigestTimeout | _EventFailed)
        else f"{type(exc).__name__}: {exc}"
    )


def digest_batch(batch_size: int | None = None, *, max_bytes: int | None = None) -> int:
    """Digest up to `batch_size` inbox events (and `max_bytes` of payload). Returns how many
    events it took (digested, failed or quarantined); 0 when none is available."""
    size = batch_size or settings.OPS_ERRORS_DIGEST_BATCH
    claimed, quarantined = claim(size, max_bytes or settings.OPS_ERRORS_DIGEST_BATCH_BYTES)
    if not claimed:
        return quarantined
    limit = settings.OPS_ERRORS_DIGEST_TIME_LIMIT
    alerts: list[dict[str, Any]] = []
    # Events that failed before are digested alone, so they cannot sink a batch again.
    fresh = [c for c in claimed if c.attempts == 1]
    alone = [c for c in claimed if c.attempts > 1]
    if fresh:
        found: list[dict[str, Any]] = []
        try:
            with time_limit(limit), transaction.atomic():
                rows = list(InboxEvent.objects.filter(pk__in=[c.pk for c in fresh]).order_by("id"))
                failures = _digest_rows(rows, found)
                InboxEvent.objects.filter(
                    pk__in=[r.pk for r in rows if r.pk not in failures]
                ).delete()
        except SoftTimeLimitExceeded:
            release([c.pk for c in fresh], TASK_TIME_LIMIT, attempted=True)
            release([c.pk for c in alone], "", attempted=False)
            raise
        except Exception as exc:  # noqa: BLE001 - whatever one event does, the others go on
            if isinstance(exc, DigestTimeout):
                after_interruption()
            logger.warning(
                "error digest batch of %d failed (%s); digesting its events one by one",
                len(fresh),
                _why(exc),
            )
            alone = fresh + alone
        else:
            alerts += found
            for c in fresh:
                if c.pk in failures:
                    failed(c.pk, c.attempts, failures[c.pk])
    for index, c in enumerate(alone):
        try:
            alerts += _digest_alone(c, limit)
        except SoftTimeLimitExceeded:
            release([c.pk], TASK_TIME_LIMIT, attempted=True)
            release([o.pk for o in alone[index + 1 :]], "", attempted=False)
            raise
    for alert in alerts:
        critical_error_occurred.send(sender=Issue, **alert)
    return len(claimed) + quarantined


def _digest_alone(claimed: Claimed, limit: float) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    try:
        with time_limit(limit), transaction.atomic():
            row = InboxEvent.objects.filter(pk=claimed.pk).first()
            if row is None:
                return []
            failures = _digest_rows([row], found)
            if failures:
                raise _EventFailed(failures[row.pk])
            row.delete()
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:  # noqa: BLE001 - recorded on the row, retried or quarantined
        if isinstance(exc, DigestTimeout):
            after_interruption()
        failed(claimed.pk, claimed.attempts, _why(exc))
        return []
    return found


def _digest_rows(rows: list[InboxEvent], alerts: list[dict[str, Any]]) -> dict[int, str]:
    """Digest rows into issues and reports; returns {row id: reason} for the rows that could
    not even be read or prepared (the caller retries those alone, the rest are stored)."""
    projects = {p.pk: p for p in ErrorProject.objects.filter(pk__in={r.project_id for r in rows})}
    groups, failures = _group_new_events(rows, projects)
    if not groups:
        return failures
    now = timezone.now()
    groups = _apply_new_issue_budget(groups, projects, now)
    issues = _upsert_issues(groups)
    _store_reports(groups, issues)
    alerts.extend(_alerts_for(groups, issues, projects, now))
    return failures


def _group_new_events(
    rows: list[InboxEvent], projects: dict[int, ErrorProject]
) -> tuple[dict[tuple[int, str], _Group], dict[int, str]]:
    """Prepare the rows not stored before and group them by (project, fingerprint); a row that
    cannot be read or prepared is left out, with its reason in the second dict."""
    scrubber = Scrubber(settings.OPS_ERRORS_SCRUB_FIELDS)
    rules = SeverityRules.load()
    known = set(
        ErrorReport.objects.filter(
            project_id__in=projects, event_id__in=[r.event_id for r in rows]
        ).values_list("project_id", "event_id")
    )
    groups: dict[tuple[int, str], _Group] = {}
    failures: dict[int, str] = {}
    for row in rows:
        if (row.project_id, row.event_id) in known:
            continue
        known.add((row.project_id, row.event_id))
        try:
            prepared = prepare(row, read_event(row), scrubber, rules)
        except (SoftTimeLimitExceeded, DigestTimeout):
            raise  # the whole batch's time is up, not this event's preparation
        except Exception as exc:  # noqa: BLE001 - one malformed event must not block the batch
            failures[row.pk] = f"{type(exc).__name__}: {exc}"
            continue
        groups.setdefault((row.project_id, prepared.fingerprint), _Group()).events.append(prepared)
    return groups, failures


def _store_reports(
    groups: dict[tuple[int, str], _Group], issues: dict[tuple[int, str], Issue]
) -> None:
    reports: list[ErrorReport] = []
    for key, group in groups.items():
        for p in group.events:
            p.report.issue = issues[key]
            reports.append(p.report)
    insert_ignoring_conflicts(reports)


def _alerts_for(
    groups: dict[tuple[int, str], _Group],
    issues: dict[tuple[int, str], Issue],
    projects: dict[int, ErrorProject],
    now: datetime,
) -> list[dict[str, Any]]:
    """critical_error_occurred's arguments for each issue of the batch that is worth an alert."""
    alerts = []
    for key, group in groups.items():
        project, issue = projects[key[0]], issues[key]
        reason = _alert_reason(project, issue, group, now)
        if reason:
            alerts.append(
                {
                    "issue_id": issue.pk,
                    "project": project.name,
                    "title": issue.title,
                    "severity": issue.severity,
                    "reason": reason,
                    "url": issue_url(issue.pk),
                    "count": issue.count,
                }
            )
    return alerts


def _matching(keys: Iterable[tuple[int, str]]) -> Q:
    """A filter for the issues of these (project id, fingerprint) pairs; empty for none."""
    condition = Q()
    for project_id, fp in keys:
        condition |= Q(project_id=project_id, fingerprint=fp)
    return condition


def _existing(keys: Iterable[tuple[int, str]]) -> set[tuple[int, str]]:
    condition = _matching(keys)
    if not condition:
        return set()
    return set(
        Issue.objects.filter(condition, grouping_version=grouping.GROUPING_VERSION).values_list(
            "project_id", "fingerprint"
        )
    )


def _apply_new_issue_budget(
    groups: dict[tuple[int, str], _Group], projects: dict[int, ErrorProject], now: datetime
) -> dict[tuple[int, str], _Group]:
    """Fold groups that would start more new issues than a project's hourly budget into the
    project's overflow issue, so invented fingerprints cannot make unbounded issues (or alerts)."""
    overflow = quotas.OVERFLOW_FINGERPRINT
    candidates = [k for k in groups if k[1] != overflow and projects[k[0]].new_issues_per_hour]
    known = _existing(candidates) if candidates else set()
    new = [k for k in candidates if k not in known]
    if not new:
        return groups
    limited = sorted({pid for pid, _ in new})
    # Spend each budget under the project's row lock (stable order: no deadlocks), and look
    # again at what exists: a concurrent digest may have created some of these meanwhile.
    list(ErrorProject.objects.select_for_update().filter(pk__in=limited).order_by("pk"))
    known = _existing(new)
    new = [k for k in new if k not in known]
    out = dict(groups)
    for pid in limited:
        # First come, first served: the groups whose first event arrived first keep their issue.
        mine = sorted((k for k in new if k[0] == pid), key=lambda k: groups[k].events[0].row.pk)
        left = quotas.new_issues_left(projects[pid], now)
        for key in mine[left:] if left is not None else []:
            out.setdefault((pid, overflow), _Group()).events.extend(out.pop(key).events)
    return out


def _upsert_issues(groups: dict[tuple[int, str], _Group]) -> dict[tuple[int, str], Issue]:
    """The issue of each group, created if missing, locked, with the group's events counted in
    (and reopened if they make it due)."""
    issues = _create_and_lock(groups)
    now = timezone.now()
    for key, group in groups.items():
        issue = issues[key]
        _count_in(issue, key[1], group.events)
        _reopen_if_due(issue, now)
        issue.save()
    return issues


def _new_issue(project_id: int, fingerprint: str, group: _Group) -> Issue:
    first = group.events[0]
    return Issue(
        project_id=project_id,
        grouping_version=grouping.GROUPING_VERSION,
        fingerprint=fingerprint,
        title=first.title,
        culprit=first.culprit,
        exception_type=first.report.exception_type,
        severity=first.report.severity,
        level=first.report.level,
        first_seen=min(p.report.received_at for p in group.events),
        last_seen=first.report.received_at,
        count=0,
    )


def _create_and_lock(groups: dict[tuple[int, str], _Group]) -> dict[tuple[int, str], Issue]:
    # Create the missing groups (a concurrent worker may create the same one: the unique
    # constraint makes that a no-op), then lock all of them for the update.
    # A stable order for inserts and locks, so two workers cannot deadlock on the same issues.
    fresh = [_new_issue(project_id, fp, group) for (project_id, fp), group in groups.items()]
    fresh.sort(key=lambda i: (i.project_id, i.fingerprint))
    Issue.objects.bulk_create(fresh, ignore_conflicts=True)
    locked = (
        Issue.objects.select_for_update(of=("self",))
        .select_related("project")
        .filter(_matching(groups), grouping_version=grouping.GROUPING_VERSION)
        .order_by("project_id", "fingerprint")
    )
    return {(i.project_id, i.fingerprint): i for i in locked}


def _count_in(issue: Issue, fingerprint: str, events: list[Prepared]) -> None:
    """Count `events` in: totals, the latest event's title and level, the worst severity."""
    latest = max(events, key=lambda p: p.report.received_at)
    issue._ops_new = issue.count == 0  # type: ignore[attr-defined]
    issue._ops_regressed = False  # type: ignore[attr-defined]
    issue.count += len(events)
    issue.last_seen = max(issue.last_seen, latest.report.received_at)
    issue.last_message = latest.report.message[:2000]
    if fingerprint == quotas.OVERFLOW_FINGERPRINT:
        budget = issue.project.new_issues_per_hour
        issue.title = f"Events beyond the budget of {budget} new issues per hour"
        issue.culprit = "new-issue budget (errors project settings)"
    else:
        issue.title = latest.title
        issue.culprit = latest.culprit or issue.culprit
    issue.level = latest.report.level
    worst = max((p.report.severity for p in events), key=SEVERITY_RANK.__getitem__)
    if issue._ops_new or SEVERITY_RANK[worst] > SEVERITY_RANK.get(issue.severity, 0):  # type: ignore[attr-defined]
        issue.severity = worst


def _reopen_if_due(issue: Issue, now: datetime) -> None:
    """A resolved issue with new events regressed; an ignored one reopens when its time or
    event count is up."""
    if issue.status == Issue.Status.RESOLVED:
        issue.status = Issue.Status.UNRESOLVED
        issue.regressed_at = now
        issue.resolved_at = None
        issue._ops_regressed = True  # type: ignore[attr-defined]
    elif issue.status == Issue.Status.IGNORED and (
        (issue.ignored_until is not None and now >= issue.ignored_until)
        or (issue.ignored_until_count is not None and issue.count >= issue.ignored_until_count)
    ):
        issue.status = Issue.Status.UNRESOLVED
        issue.ignored_until = None
        issue.ignored_until_count = None


def _alert_reason(project: ErrorProject, issue: Issue, group: _Group, now: datetime) -> str | None:
    if issue.status == Issue.Status.IGNORED:
        return None
    events = [p.report for p in group.events]
    if getattr(issue, "_ops_regressed", False) and project.alert_on_regression:
        return "regression"
    if getattr(issue, "_ops_new", False) and project.alert_on_new_issue:
        return "new_issue"
    if project.alert_on_critical and any(r.severity == "critical" for r in events):
        return "critical"
    threshold = project.frequency_threshold
    if threshold and issue.count > threshold:
        since = now - timedelta(minutes=project.frequency_window_minutes)
        if ErrorReport.objects.filter(issue=issue, received_at__gte=since).count() > threshold:
            return "frequency"
    if project.business_hours_alerts and any(
        r.level in ("error", "fatal") and in_business_hours(project, r.received_at) for r in events
    ):
        return "business_hours"
    return None


def digest_for(seconds: float, *, max_batches: int = 10_000) -> tuple[int, bool]:
    """Digest batches for about `seconds` (bounded, so one task never runs forever).
    Returns (events taken, whether available events were left behind)."""
    total = 0
    deadline = time.monotonic() + seconds
    for _ in range(max_batches):
        done = digest_batch()
        if not done:
            return total, False
        total += done
        if time.monotonic() >= deadline:
            break
    return total, True


def digest_all(*, max_batches: int = 1000) -> int:
    """Drain the inbox of every available event (retries wait for their delay)."""
    total = 0
    for _ in range(max_batches):
        done = digest_batch()
        if not done:
            break
        total += done
    return total
