"""Fixed histogram buckets shared by the recorder, the collectors and /metrics.

Counts are kept per bucket (not cumulative) so processes can add them with HINCRBYFLOAT;
percentiles are read from the merged counts by linear interpolation inside the bucket that
holds the rank, the way Prometheus' histogram_quantile does. 0.2 s (the p95 threshold) and
0.3 s (a common Apdex target) are exact boundaries.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

# Seconds. Upper bounds; a last implicit bucket holds everything above (+Inf).
DURATION_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.25,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    7.5,
    10.0,
    30.0,
    60.0,
)
SLOTS = len(DURATION_BUCKETS) + 1


def bucket_index(seconds: float) -> int:
    """The slot an observation falls into (Prometheus buckets are `le`, upper-inclusive)."""
    return bisect.bisect_left(DURATION_BUCKETS, seconds)


def quantile(q: float, counts: Sequence[float]) -> float | None:
    """Estimate the q-quantile (0..1) in seconds from per-slot counts; None without data."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    seen = 0.0
    for i, count in enumerate(counts):
        if count <= 0:
            continue
        if seen + count >= rank:
            lower = DURATION_BUCKETS[i - 1] if i > 0 else 0.0
            if i >= len(DURATION_BUCKETS):
                # Above the last bound nothing tells us more than the bound itself.
                return DURATION_BUCKETS[-1]
            upper = DURATION_BUCKETS[i]
            return lower + (upper - lower) * ((rank - seen) / count)
        seen += count
    return DURATION_BUCKETS[-1]


# /metrics exposes a subset: prometheus-client's default bounds trimmed, plus 0.2 and 0.3 for
# SLO and Apdex queries. Fewer series per route keeps a scrape of hundreds of routes cheap.
EXPOSED_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.2,
    0.3,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
EXPOSED_SLOTS = len(EXPOSED_BUCKETS) + 1
EXPOSED_LE: tuple[str, ...] = (*(repr(b) for b in EXPOSED_BUCKETS), "+Inf")
# The exposed slot each fine slot falls into (a fine bound is within the next exposed bound).
TO_EXPOSED: tuple[int, ...] = (
    *(bisect.bisect_left(EXPOSED_BUCKETS, b) for b in DURATION_BUCKETS),
    len(EXPOSED_BUCKETS),
)


def cumulative(exposed_counts: Sequence[float]) -> list[tuple[str, float]]:
    """(le, cumulative count) pairs from per-exposed-slot counts, ending with +Inf."""
    out: list[tuple[str, float]] = []
    running = 0.0
    for le, count in zip(EXPOSED_LE, exposed_counts, strict=False):
        running += count
        out.append((le, running))
    return out
