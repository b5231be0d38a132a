"""What the issue page shows besides the issue's own fields: its events one at a time (newest
first), how often it happened (hourly over 24 h, daily over 30 d), its releases and
environments, and tag facets.

Every read goes through the (issue, -received_at) index and touches at most the events an issue
keeps (the project's max_events_per_issue); the facets read only the newest FACET_WINDOW events.
Counts are of the events kept: when retention removed older ones, the buckets before the oldest
kept event are shown as "not kept", not as zero.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from errors.models import ErrorReport, Issue
from opsconsole.charts import line_chart

FACET_WINDOW = 1000
FACET_KEYS = 10
FACET_VALUES = 10


class BadEventNumber(ValueError):
    """?event= is not the number of one of the issue's events; the message says what is."""


def newest_first(issue: Issue) -> QuerySet[ErrorReport]:
    return issue.reports.order_by("-received_at", "-id")


def event_page(issue: Issue, raw: str | None) -> dict[str, Any]:
    """The event numbered `raw` (1 is the newest), with the numbers either side."""
    total = issue.reports.count()
    if raw is None or raw == "":
        number = 1
    else:
        try:
            number = int(raw)
        except ValueError:
            raise BadEventNumber("event must be a whole number, 1 for the newest") from None
        if not 1 <= number <= max(total, 1):
            raise BadEventNumber(
                f"event must be between 1 and {total} (this issue keeps {total} events)"
            )
    event = newest_first(issue)[number - 1] if total else None
    return {
        "event": event,
        "number": number,
        "total": total,
        "newer": number - 1 if number > 1 else None,
        "older": number + 1 if number < total else None,
    }


@dataclass(frozen=True)
class Bar:
    start: datetime
    count: int | None  # None: before the oldest kept event, when older ones were removed


def _floor(at: datetime, step: timedelta) -> datetime:
    at = at.astimezone(UTC)
    if step == timedelta(hours=1):
        return at.replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def frequency(
    issue: Issue, step: timedelta, buckets: int, now: datetime, caption: str = "Events"
) -> dict[str, Any]:
    """Events per bucket (hour or day) over the last `buckets` buckets, and their chart (time
    and count axes, hover read-outs; buckets older than the oldest kept event are shaded, not
    drawn as zero)."""
    first = _floor(now, step) - step * (buckets - 1)
    trunc = TruncHour if step == timedelta(hours=1) else TruncDay
    counts = dict(
        issue.reports.filter(received_at__gte=first)
        .annotate(bucket=trunc("received_at", tzinfo=UTC))
        .values("bucket")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("bucket", "n")
    )
    kept_since = _kept_since(issue)
    bars = []
    for i in range(buckets):
        start = first + step * i
        known = kept_since is None or start + step > kept_since
        bars.append(Bar(start, counts.get(start, 0) if known else None))
    counted = [(b.start, b.count) for b in bars if b.count is not None]
    total = sum(counts.values())
    end = first + step * buckets
    shaded = [(first, kept_since, "before the oldest kept event")] if kept_since else []
    return {
        "bars": bars,
        "chart": line_chart(
            counted,
            title=f"{caption}: {total} event{'' if total == 1 else 's'}",
            unit="",
            start=first,
            end=end,
            markers=[m for m in shaded if m[1] > first],
            bucket_seconds=step.total_seconds(),
            label=f"{caption}: events per {'hour' if step == timedelta(hours=1) else 'day'}",
        ),
        "total": total,
        "peak": max(counts.values(), default=0),
        "partial": any(b.count is None for b in bars),
    }


def _kept_since(issue: Issue) -> datetime | None:
    """When the oldest kept event arrived, if retention removed older ones; else None."""
    kept = issue.reports.count()
    if kept >= issue.count:
        return None
    oldest = issue.reports.order_by("received_at").values_list("received_at", flat=True).first()
    return oldest


def releases(issue: Issue) -> dict[str, Any]:
    """The first and last release seen in the kept events, and the environments with counts."""
    with_release = issue.reports.exclude(release="")
    first = with_release.order_by("received_at", "id").values_list("release", flat=True).first()
    last = with_release.order_by("-received_at", "-id").values_list("release", flat=True).first()
    environments = list(
        issue.reports.values("environment")
        .annotate(n=Count("id"))
        .order_by("-n", "environment")
        .values_list("environment", "n")[:FACET_VALUES]
    )
    return {"first_release": first, "last_release": last, "environments": environments}


def tag_facets(issue: Issue) -> dict[str, Any]:
    """Top FACET_KEYS tag keys (by how many events carry them), each with its top
    FACET_VALUES values and counts, over the newest FACET_WINDOW events."""
    tags = list(newest_first(issue).values_list("tags", flat=True)[:FACET_WINDOW])
    per_key: dict[str, Counter[str]] = {}
    for event_tags in tags:
        if not isinstance(event_tags, dict):
            continue
        for key, value in dict.items(event_tags):
            text = value if isinstance(value, str) else str(value)
            per_key.setdefault(str(key), Counter())[text[:200]] += 1
    keys = sorted(per_key.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))[:FACET_KEYS]
    return {
        "window": len(tags),
        "facets": [
            {
                "key": key,
                "events": sum(values.values()),
                "top": [
                    {"value": v, "count": n, "percent": n / len(tags) * 100.0}
                    for v, n in sorted(values.items(), key=lambda vn: (-vn[1], vn[0]))[
                        :FACET_VALUES
                    ]
                ],
            }
            for key, values in keys
        ],
    }


def issue_context(issue: Issue, raw_event: str | None) -> dict[str, Any]:
    """Everything the issue page adds to the admin's change form."""
    now = timezone.now()
    return {
        "paging": event_page(issue, raw_event),
        "hourly": frequency(issue, timedelta(hours=1), 24, now, "Last 24 hours, per hour"),
        "daily": frequency(issue, timedelta(days=1), 30, now, "Last 30 days, per day"),
        "releases": releases(issue),
        "tag_facets": tag_facets(issue),
    }
