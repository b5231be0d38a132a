"""Per-project quotas: what ingest accepts (events and bytes per minute, bytes per day) and how
many new issues the digest may create per hour.

Ingest refuses an event beyond a quota with 429, `Retry-After` and Sentry's
`X-Sentry-Rate-Limits`, so SDKs back off by themselves. New issues are different: whether an
event starts a new issue is only known when it is grouped, so the digest folds fingerprints
beyond the hourly budget into one overflow issue per project (see errors/digest.py). A client
that invents a fingerprint per event thus gets a bounded number of issues, and of alerts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from errors.models import ErrorProject, Issue
from errors.ratelimit import DAY, MINUTE, Quota, Refusal, consume

# What the refusal says, per quota: the reason code SDKs see in X-Sentry-Rate-Limits.
REASONS = {
    "events_per_minute": ("rate_limit", "events per minute"),
    "bytes_per_minute": ("bytes_rate_limit", "event bytes per minute"),
    "bytes_per_day": ("usage_exceeded", "event bytes per day"),
}
# The grouping key of a project's overflow issue; no real fingerprint has this shape
# (real ones are 64 hex digits).
OVERFLOW_FINGERPRINT = "overflow:new-issue-budget"
NEW_ISSUE_WINDOW = timedelta(hours=1)


def admit(project: ErrorProject, size: int) -> Refusal | None:
    """Count one event of `size` bytes against the project's quotas; None when accepted."""
    return consume(
        project.pk,
        [
            Quota("events_per_minute", 1, project.rate_limit_per_minute, MINUTE),
            Quota("bytes_per_minute", size, project.bytes_per_minute, MINUTE),
            Quota("bytes_per_day", size, project.bytes_per_day, DAY),
        ],
    )


def refusal_detail(refusal: Refusal) -> str:
    what = REASONS[refusal.quota.name][1]
    return f"quota exceeded: {refusal.quota.limit} {what}; retry in {refusal.retry_after} s"


def refusal_headers(refusal: Refusal) -> dict[str, str]:
    reason = REASONS[refusal.quota.name][0]
    return {
        "Retry-After": str(refusal.retry_after),
        "X-Sentry-Rate-Limits": f"{refusal.retry_after}:error;default:project:{reason}",
    }


def new_issues_left(project: ErrorProject, now: datetime) -> int | None:
    """How many more issues the project may start this hour; None when unlimited. The caller
    holds the project's row lock, so two digests cannot both spend the last ones."""
    budget = project.new_issues_per_hour
    if not budget:
        return None
    used = (
        Issue.objects.filter(project=project, created_at__gte=now - NEW_ISSUE_WINDOW)
        .exclude(fingerprint=OVERFLOW_FINGERPRINT)
        .count()
    )
    return max(0, budget - used)
