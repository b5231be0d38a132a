"""Per-project quotas: what ingest accepts (events and bytes per minute, bytes per day) and how
many new issues the digest may create per hour.

Ingest refuses an event beyond a quota with 429, `Retry-After` and Sentry's
`X-Sentry-Rate-Limits`, so SDKs back off by themselves. New issues are different: whether an
event starts a new issue is only known when it is grouped, so the digest folds fingerprints
beyond the hourly budget into one overflow issue per project (see errors/digest.py). A client
that invents a fingerprint per event thus gets a bounded number of issues, and of alerts.
"""

from __future__ import annotations

import time
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


# A project refused once is refused by this process until its window reopens, before its next
# events are read (as Sentry's Relay caches the limits it hands out): a client that ignores
# Retry-After then costs a header lookup per request, not a body read and parse. Keyed by
# project id: (the wall-clock time the window reopens, the refusal).
_blocked: dict[int, tuple[float, Refusal]] = {}
BLOCKED_MAX = 10_000  # projects remembered per process; beyond, the memory starts over


def _quotas(project: ErrorProject, size: int) -> list[Quota]:
    return [
        Quota("events_per_minute", 1, project.rate_limit_per_minute, MINUTE),
        Quota("bytes_per_minute", size, project.bytes_per_minute, MINUTE),
        Quota("bytes_per_day", size, project.bytes_per_day, DAY),
    ]


def admit(project: ErrorProject, size: int) -> Refusal | None:
    """Count one event of `size` bytes against the project's quotas; None when accepted."""
    refusal = consume(project.pk, _quotas(project, size))
    if refusal is not None:
        if len(_blocked) >= BLOCKED_MAX:
            _blocked.clear()
        now, window = time.time(), refusal.quota.window
        _blocked[project.pk] = (now - now % window + window, refusal)  # when the window reopens
    return refusal


def blocked(project: ErrorProject) -> Refusal | None:
    """The refusal still in force for `project` in this process, if any. A quota the operator
    has changed since (raised, lowered, turned off) lifts it: the counters decide again."""
    entry = _blocked.get(project.pk)
    if entry is None:
        return None
    until, refusal = entry
    left = until - time.time()
    current = {q.name: q.limit for q in _quotas(project, 0)}
    if left <= 0 or current.get(refusal.quota.name) != refusal.quota.limit:
        _blocked.pop(project.pk, None)
        return None
    return Refusal(refusal.quota, int(left) + 1)  # as consume() says it


def forget_refusals() -> None:
    """Drop what this process remembers of refusals (tests start each from nothing)."""
    _blocked.clear()


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
