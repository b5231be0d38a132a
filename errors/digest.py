"""The worker side of ingest: drain `InboxEvent` rows in batches into issues and reports.

One batch is one transaction: claim rows (SKIP LOCKED on PostgreSQL, so two workers share the
work), scrub, group, upsert issues, insert reports, delete the claimed rows. Alert signals are
sent after the commit. A row that cannot be digested is retried a few times, then dropped with
a warning (a warning, not an error: errors are captured as events, which would loop).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from errors import grouping
from errors.ingest import loads
from errors.models import SEVERITY_RANK, ErrorProject, ErrorReport, InboxEvent, Issue
from errors.scrubbing import Scrubber
from errors.severity import SeverityRules
from errors.signals import critical_error_occurred

logger = logging.getLogger(__name__)
MAX_ATTEMPTS = 3
MAX_FRAMES = 100
MAX_BREADCRUMBS = 100
# Reasons in the order they win when one batch triggers several for the same issue.
STORED_KEYS = (
    "event_id", "timestamp", "level", "platform", "release", "environment", "transaction",
    "exception", "logentry", "message", "fingerprint", "request", "tags", "breadcrumbs",
    "contexts", "user",
)  # fmt: skip
REASONS = ["regression", "new_issue", "critical", "frequency", "business_hours"]
# What PostgreSQL cannot store although the ingest accepts it as Python's json (and so
# sentry-sdk) writes it: NaN and Infinity (jsonb refuses them), NUL (text and jsonb refuse it)
# and UTF-16 surrogates (a lone one cannot be encoded; Python writes them for surrogate-escaped
# file names). A payload that may hold one is cleaned before it is stored, so it neither fails
# the whole batch (the slow event-by-event path) nor is dropped after its retries.
# Numbers past a double's range (1e400, 400 digits) are read as infinity, so they count too.
UNSTORABLE = re.compile(
    rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})|NaN|Infinity|[0-9.][eE]\+?0*[1-9][0-9]{2}|[0-9]{300}"
)


@dataclass
class Prepared:
    row: InboxEvent
    fingerprint: str
    title: str
    culprit: str
    report: ErrorReport


@dataclass
class _Group:
    events: list[Prepared] = field(default_factory=list)


def storable(value: Any) -> Any:
    """`value` with NUL characters and lone surrogates replaced by U+FFFD, in keys and values,
    and non-finite numbers written as the strings "NaN", "Infinity" and "-Infinity"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str):
        if "\0" in value:
            value = value.replace("\0", "\ufffd")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
        return value
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


def _text(value: Any, limit: int) -> str:
    return "" if value is None else str(value)[:limit]


def _timestamp(value: Any, default: datetime) -> datetime:
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(float(value), tz=UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    return default


def _tags(value: Any) -> dict[str, str]:
    items: Iterable[tuple[Any, ...]]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = (tuple(p) for p in value if isinstance(p, list | tuple) and len(p) == 2)
    else:
        return {}
    return {_text(k, 200): _text(v, 200) for k, v in items}


def _frames(exception: dict[str, Any] | None) -> list[dict[str, Any]]:
    keep = (
        "filename", "abs_path", "module", "function", "lineno", "colno", "context_line",
        "pre_context", "post_context", "in_app", "vars",
    )  # fmt: skip
    return [{k: f[k] for k in keep if k in f} for f in grouping.frames_of(exception)][-MAX_FRAMES:]


def prepare(
    row: InboxEvent, event: dict[str, Any], scrubber: Scrubber, rules: SeverityRules
) -> Prepared:
    # Scrub only what is stored (modules, sdk, extra, debug_meta are dropped unread).
    event = scrubber.scrub({k: event[k] for k in STORED_KEYS if k in event})
    exception = grouping.primary_exception(event)
    frames = _frames(exception)
    in_app = [f for f in frames if f.get("in_app")] or frames
    top = in_app[-1] if in_app else {}
    level = _text(event.get("level") or ("error" if exception else "info"), 10).lower()
    exc_type = grouping.exception_type(exception)
    title, culprit = grouping.title_and_culprit(event)
    crumbs = event.get("breadcrumbs")
    if isinstance(crumbs, dict):
        crumbs = crumbs.get("values")
    lineno = top.get("lineno")
    report = ErrorReport(
        project_id=row.project_id,
        event_id=row.event_id,
        exception_type=exc_type[:255],
        message=grouping.message_of(event, exception)[:10_000],
        filename=_text(top.get("abs_path") or top.get("filename"), 500),
        lineno=lineno if isinstance(lineno, int) and 0 <= lineno < 2**31 else None,
        frames=frames,
        request=event.get("request") if isinstance(event.get("request"), dict) else {},
        tags=_tags(event.get("tags")),
        breadcrumbs=crumbs[-MAX_BREADCRUMBS:] if isinstance(crumbs, list) else [],
        contexts=event.get("contexts") if isinstance(event.get("contexts"), dict) else {},
        user=event.get("user") if isinstance(event.get("user"), dict) else {},
        release=_text(event.get("release"), 200),
        environment=_text(event.get("environment"), 100),
        platform=_text(event.get("platform"), 50),
        level=level,
        severity=rules.classify(exc_type, level),
        reported_at=_timestamp(event.get("timestamp"), row.received_at),
        received_at=row.received_at,
    )
    return Prepared(row, grouping.fingerprint(event), title, culprit, report)


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


def digest_batch(batch_size: int | None = None) -> int:
    """Digest up to `batch_size` inbox rows. Returns how many rows were consumed."""
    size = batch_size or settings.OPS_ERRORS_DIGEST_BATCH
    alerts: list[dict[str, Any]] = []
    try:
        with transaction.atomic():
            rows = list(
                InboxEvent.objects.select_for_update(skip_locked=True).order_by("id")[:size]
            )
            if not rows:
                return 0
            _digest_rows(rows, alerts)
            InboxEvent.objects.filter(pk__in=[r.pk for r in rows]).delete()
    except (DatabaseError, UnicodeEncodeError) as exc:
        # One event the database refuses must not wedge the queue: retry one by one. A lone
        # surrogate ("\ud800" in the JSON) fails in the driver, before PostgreSQL sees it.
        logger.warning("error digest batch failed (%s); retrying event by event", exc)
        alerts = []
        consumed = _digest_one_by_one(size, alerts)
    else:
        consumed = len(rows)
    for alert in alerts:
        critical_error_occurred.send(sender=Issue, **alert)
    return consumed


def _digest_one_by_one(size: int, alerts: list[dict[str, Any]]) -> int:
    ids = list(InboxEvent.objects.order_by("id").values_list("id", flat=True)[:size])
    consumed = 0
    for pk in ids:
        found: list[dict[str, Any]] = []
        with transaction.atomic():
            row = InboxEvent.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
            if row is None:
                continue
            try:
                with transaction.atomic():
                    _digest_rows([row], found)
            except (DatabaseError, UnicodeEncodeError) as exc:
                row.attempts += 1
                if row.attempts < MAX_ATTEMPTS:
                    row.save(update_fields=["attempts"])
                    continue
                logger.warning(
                    "dropping event %s after %s attempts: %s", row.event_id, row.attempts, exc
                )
            row.delete()
            consumed += 1
        alerts.extend(found)
    return consumed


def _digest_rows(rows: list[InboxEvent], alerts: list[dict[str, Any]]) -> None:
    scrubber = Scrubber(settings.OPS_ERRORS_SCRUB_FIELDS)
    rules = SeverityRules.load()
    projects = {p.pk: p for p in ErrorProject.objects.filter(pk__in={r.project_id for r in rows})}
    known = set(
        ErrorReport.objects.filter(
            project_id__in=projects, event_id__in=[r.event_id for r in rows]
        ).values_list("project_id", "event_id")
    )
    groups: dict[tuple[int, str], _Group] = {}
    for row in rows:
        if (row.project_id, row.event_id) in known:
            continue
        known.add((row.project_id, row.event_id))
        try:
            payload = bytes(row.payload)
            event = loads(payload)
            if not isinstance(event, dict):
                raise ValueError("event is not a JSON object")
            if UNSTORABLE.search(payload):
                event = storable(event)
            prepared = prepare(row, event, scrubber, rules)
        except Exception as exc:  # one malformed event must not block the batch
            logger.warning("dropping undigestible event %s: %s", row.event_id, exc)
            continue
        groups.setdefault((row.project_id, prepared.fingerprint), _Group()).events.append(prepared)
    if not groups:
        return
    now = timezone.now()
    issues = _upsert_issues(groups)
    reports: list[ErrorReport] = []
    for key, group in groups.items():
        issue = issues[key]
        for p in group.events:
            p.report.issue = issue
            reports.append(p.report)
    insert_ignoring_conflicts(reports)
    for key, group in groups.items():
        reason = _alert_reason(projects[key[0]], issues[key], group, now)
        if reason:
            issue = issues[key]
            alerts.append(
                {
                    "issue_id": issue.pk,
                    "project": projects[key[0]].name,
                    "title": issue.title,
                    "severity": issue.severity,
                    "reason": reason,
                    "url": issue_url(issue.pk),
                    "count": issue.count,
                }
            )


def _upsert_issues(groups: dict[tuple[int, str], _Group]) -> dict[tuple[int, str], Issue]:
    version = grouping.GROUPING_VERSION
    fresh = []
    for (project_id, fp), group in groups.items():
        first = group.events[0]
        fresh.append(
            Issue(
                project_id=project_id,
                grouping_version=version,
                fingerprint=fp,
                title=first.title,
                culprit=first.culprit,
                exception_type=first.report.exception_type,
                severity=first.report.severity,
                level=first.report.level,
                first_seen=min(p.report.received_at for p in group.events),
                last_seen=first.report.received_at,
                count=0,
            )
        )
    # Create the missing groups (a concurrent worker may create the same one: the unique
    # constraint makes that a no-op), then lock all of them for the update.
    # A stable order for inserts and locks, so two workers cannot deadlock on the same issues.
    fresh.sort(key=lambda i: (i.project_id, i.fingerprint))
    Issue.objects.bulk_create(fresh, ignore_conflicts=True)
    condition = Q()
    for project_id, fp in groups:
        condition |= Q(project_id=project_id, fingerprint=fp)
    locked = (
        Issue.objects.select_for_update()
        .filter(condition, grouping_version=version)
        .order_by("project_id", "fingerprint")
    )
    issues = {(i.project_id, i.fingerprint): i for i in locked}
    now = timezone.now()
    for key, group in groups.items():
        issue = issues[key]
        events = group.events
        latest = max(events, key=lambda p: p.report.received_at)
        issue._ops_new = issue.count == 0  # type: ignore[attr-defined]
        issue._ops_regressed = False  # type: ignore[attr-defined]
        issue.count += len(events)
        issue.last_seen = max(issue.last_seen, latest.report.received_at)
        issue.last_message = latest.report.message[:2000]
        issue.title = latest.title
        issue.culprit = latest.culprit or issue.culprit
        issue.level = latest.report.level
        worst = max((p.report.severity for p in events), key=SEVERITY_RANK.__getitem__)
        if issue._ops_new or SEVERITY_RANK[worst] > SEVERITY_RANK.get(issue.severity, 0):  # type: ignore[attr-defined]
            issue.severity = worst
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
        issue.save()
    return issues


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


def digest_all(*, max_batches: int = 1000) -> int:
    """Drain the inbox (bounded, so one task never runs forever)."""
    total = 0
    for _ in range(max_batches):
        done = digest_batch()
        if not done:
            break
        total += done
    return total
