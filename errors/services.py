"""The errors app's verbs: accept events, digest them, act on issues, report, clean up."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Min, Q, QuerySet
from django.utils import timezone

from errors import signals
from errors.digest import digest_all, digest_for
from errors.ingest import Envelope, Limits
from errors.models import ErrorProject, ErrorReport, InboxEvent, Issue, ProjectKey
from errors.queueing import kick_digest
from errors.ratelimit import forget_expired
from opsconsole import audit
from opsconsole.retention import delete_in_batches


def limits() -> Limits:
    return Limits(
        max_compressed=settings.OPS_ERRORS_MAX_ENVELOPE_BYTES,
        max_decompressed=settings.OPS_ERRORS_MAX_DECOMPRESSED_BYTES,
        max_event=settings.OPS_ERRORS_MAX_EVENT_BYTES,
        max_header=settings.OPS_ERRORS_MAX_HEADER_BYTES,
    )


# --- projects -----------------------------------------------------------------------------
def create_project(name: str, *, actor: Any = None) -> tuple[ErrorProject, ProjectKey]:
    name = name.strip()
    if not name:
        raise ValueError("a project needs a name, e.g. createerrorproject billing-api")
    with transaction.atomic():
        if ErrorProject.objects.filter(name=name).exists():
            raise ValueError(f"a project named {name!r} already exists: pick another name")
        project = ErrorProject.objects.create(name=name)
        key = ProjectKey.objects.create(project=project, label="default")
    audit.record("errors.project.create", actor=actor, target=f"ErrorProject:{project.pk}")
    return project, key


def dsn_for(key: ProjectKey) -> str:
    return key.dsn(settings.OPS_PUBLIC_URL)


# --- ingest -------------------------------------------------------------------------------
def enqueue(project_id: int, envelope: Envelope, *, kick: bool = True) -> None:
    """Store an accepted event durably (one INSERT); a duplicate event_id is stored once."""
    if envelope.event is None or envelope.event_id is None:
        return
    # One statement, no explicit transaction: a single round trip and one commit per event.
    with _inbox_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {InboxEvent._meta.db_table} "  # noqa: S608 - the table name is ours
            "(project_id, event_id, payload, received_at, attempts) "
            "VALUES (%s, %s, %s, %s, 0) ON CONFLICT DO NOTHING",
            [project_id, envelope.event_id, envelope.event, timezone.now()],
        )
    if kick:
        transaction.on_commit(kick_digest)


def _inbox_cursor() -> Any:
    """A cursor for the inbox INSERT. On PostgreSQL, one that binds parameters on the server:
    Django's psycopg cursors inline them client-side, so the 10-100 KB payload would travel as
    an escaped hex literal that PostgreSQL must parse, a slower insert (the figures are in
    docs/PERFORMANCE.md, Error ingest). Wrapped like Django's own, so query metrics and
    breadcrumbs still see it."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    import psycopg

    # As BaseDatabaseWrapper._cursor does, with psycopg's server-binding cursor class.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        return connection._prepare_cursor(psycopg.Cursor(connection.connection))  # type: ignore[attr-defined]


def digest() -> int:
    return digest_all()


def digest_for_seconds(seconds: float) -> tuple[int, bool]:
    """Digest for about `seconds`; (events taken, whether available ones were left)."""
    return digest_for(seconds)


# --- issue actions ------------------------------------------------------------------------
def resolve_issue(issue: Issue, *, actor: Any = None) -> Issue:
    issue.status = Issue.Status.RESOLVED
    issue.resolved_at = timezone.now()
    issue.ignored_until = None
    issue.ignored_until_count = None
    issue.save(update_fields=["status", "resolved_at", "ignored_until", "ignored_until_count"])
    audit.record("errors.issue.resolve", actor=actor, target=f"Issue:{issue.pk}")
    signals.issue_resolved.send_robust(sender=Issue, issue_id=issue.pk, status=issue.status)
    return issue


def ignore_issue(
    issue: Issue,
    *,
    actor: Any = None,
    until: datetime | None = None,
    until_more_events: int | None = None,
) -> Issue:
    """Ignore an issue forever, until a time, or until `until_more_events` more events."""
    issue.status = Issue.Status.IGNORED
    issue.ignored_until = until
    issue.ignored_until_count = issue.count + until_more_events if until_more_events else None
    issue.save(update_fields=["status", "ignored_until", "ignored_until_count"])
    audit.record(
        "errors.issue.ignore",
        actor=actor,
        target=f"Issue:{issue.pk}",
        details={
            "until": until.isoformat() if until else None,
            "until_more_events": until_more_events,
        },
    )
    signals.issue_resolved.send_robust(sender=Issue, issue_id=issue.pk, status=issue.status)
    return issue


def reopen_issue(issue: Issue, *, actor: Any = None) -> Issue:
    issue.status = Issue.Status.UNRESOLVED
    issue.resolved_at = None
    issue.ignored_until = None
    issue.ignored_until_count = None
    issue.save(update_fields=["status", "resolved_at", "ignored_until", "ignored_until_count"])
    audit.record("errors.issue.reopen", actor=actor, target=f"Issue:{issue.pk}")
    return issue


def revoke_key(key: ProjectKey, *, actor: Any = None) -> None:
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])
    audit.record("errors.key.revoke", actor=actor, target=f"ProjectKey:{key.pk}")


# --- report -------------------------------------------------------------------------------
def get_error_report(days: int = 7) -> dict[str, Any]:
    """Totals, distribution by severity and the 10 most common issues over the last `days`.

    One pass over the window's events (grouped by issue and severity; the totals, severities
    and the ranking are added up from those groups), then the ten issues shown are read by id:
    three separate aggregates over a million events took 2 s."""
    since = timezone.now() - timedelta(days=days)
    groups = (
        ErrorReport.objects.filter(received_at__gte=since)
        .values_list("issue", "severity")
        .annotate(n=Count("id"), first=Min("received_at"), last=Max("received_at"))
        .order_by()
    )
    by_severity: dict[str, int] = {}
    per_issue: dict[int, list[Any]] = {}
    for issue_id, severity, n, first, last in groups:
        by_severity[severity] = by_severity.get(severity, 0) + n
        seen = per_issue.setdefault(issue_id, [0, first, last])
        seen[0] += n
        seen[1], seen[2] = min(seen[1], first), max(seen[2], last)
    ranked = sorted(per_issue.items(), key=lambda kv: (-kv[1][0], -kv[1][2].timestamp()))[:10]
    issues = Issue.objects.select_related("project").in_bulk([issue_id for issue_id, _ in ranked])
    return {
        "days": days,
        "since": since,
        "total": sum(by_severity.values()),
        "issues": len(per_issue),
        "by_severity": {s: by_severity.get(s, 0) for s in ("critical", "error", "warning", "info")},
        "top_issues": [
            {
                "issue_id": issue_id,
                "title": issues[issue_id].title,
                "project": issues[issue_id].project.name,
                "status": issues[issue_id].status,
                "count": count,
                "latest_message": _latest_message(issue_id),
                "first_seen": first,
                "last_seen": last,
            }
            for issue_id, (count, first, last) in ranked
        ],
    }


def _latest_message(issue_id: int) -> str:
    """The newest event's message (through the (issue, -received_at) index)."""
    message = (
        ErrorReport.objects.filter(issue_id=issue_id)
        .order_by("-received_at")
        .values_list("message", flat=True)
        .first()
    )
    return message or ""


# --- retention ----------------------------------------------------------------------------
def cleanup(*, now: datetime | None = None) -> dict[str, int]:
    """Remove events past each project's retention, cap events per issue, drop empty issues."""
    now = now or timezone.now()
    deleted = {"ErrorReport": 0, "Issue": 0}
    counters = forget_expired(now=now)  # ingest quota windows that have passed (no Redis)
    if counters:
        deleted["QuotaCounter"] = counters
    for project in ErrorProject.objects.all():
        cutoff = now - timedelta(days=project.retention_days)
        deleted["ErrorReport"] += delete_in_batches(
            ErrorReport.objects.filter(project=project, received_at__lt=cutoff)
        )
        cap = project.max_events_per_issue
        crowded = (
            ErrorReport.objects.filter(project=project)
            .values("issue")
            .annotate(n=Count("id"))
            .filter(n__gt=cap)
            .values_list("issue", flat=True)
        )
        for issue_id in list(crowded):
            deleted["ErrorReport"] += delete_in_batches(_beyond_cap(issue_id, cap))
        deleted["Issue"] += delete_in_batches(
            Issue.objects.filter(project=project, last_seen__lt=cutoff, reports__isnull=True)
        )
    return deleted


def _beyond_cap(issue_id: int, cap: int) -> QuerySet[ErrorReport]:
    """The reports of an issue older than its `cap` newest ones."""
    reports = ErrorReport.objects.filter(issue_id=issue_id)
    if cap == 0:
        return reports
    last_kept = reports.order_by("-received_at", "-id").values("received_at", "id")[cap - 1]
    return reports.filter(
        Q(received_at__lt=last_kept["received_at"])
        | Q(received_at=last_kept["received_at"], id__lt=last_kept["id"])
    )
