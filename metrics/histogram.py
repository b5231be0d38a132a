"""Fixed histogram buckets shared by the recorder, the collectors and /metrics.

Counts are kept per bucket (not cumulative) so processes can add them with HINCRBYFLOAT;
percentiles are read from the merged counts by linear interpolation inside the bucket that
holds the rank, the way Prometheus' histogram_quantile does. 0.2 s (the p95 threshold) and
0.3 s (a common Apdex target) are exact boundaries.
"""

from __future__ import annotations

import bisect
import math
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


def cumulative(counts: Sequence[float]) -> list[tuple[str, float]]:
    """(le, cumulative count) pairs in exposition order, ending with +Inf."""
    out: list[tuple[str, float]] = []
    running = 0.0
    for i, bound in enumerate(DURATION_BUCKETS):
        running += counts[i] if i < len(counts) else 0.0
        out.append((_le(bound), running))
    running += counts[len(DURATION_BUCKETS)] if len(counts) > len(DURATION_BUCKETS) else 0.0
    out.append(("+Inf", running))
    return out


def _le(bound: float) -> str:
    return repr(float(bound)) if not math.isinf(bound) else "+Inf"
