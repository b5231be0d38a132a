"""The health history as a timeline: per component, coloured segments over a period."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from health import uptime
from opsconsole import charts

# Slices of the period at most (each at least one check interval wide).
MAX_SLICES = 240


def slices_for(span: timedelta) -> int:
    return max(1, min(MAX_SLICES, int(span.total_seconds() // uptime.check_interval())))


def segments(row: list[str | None], start: datetime, width: float) -> list[dict[str, Any]]:
    """Runs of equal slices as segments: x and w in slices, status, and a read-out."""
    out: list[dict[str, Any]] = []
    for i, status in enumerate(row):
        name = status or "unknown"
        if out and out[-1]["status"] == name:
            out[-1]["w"] += 1
            continue
        out.append({"x": i, "w": 1, "status": name})
    local = timezone.localtime
    for seg in out:
        a = start + timedelta(seconds=seg["x"] * width)
        b = start + timedelta(seconds=(seg["x"] + seg["w"]) * width)
        seg["title"] = f"{seg['status']}: {local(a):%b %d %H:%M} – {local(b):%b %d %H:%M}"
    return out


def build(start: datetime, end: datetime) -> dict[str, Any]:
    """Rows per component (segments, uptime over the period) and a time axis (percent of the
    bar's width, so the labels need no scaling)."""
    count = slices_for(end - start)
    width = (end - start).total_seconds() / count
    rows = uptime.timeline(start, end, count)
    ups = uptime.per_component(start, end)
    span = (end - start).total_seconds()
    ticks = [
        {"pct": round((at - start).total_seconds() / span * 100, 2), "label": label}
        for at, label in charts.time_ticks(start, end, 560)
    ]
    return {
        "slices": count,
        "ticks": ticks,
        "overall": uptime.overall(start, end),
        "rows": [
            {
                "component": component,
                "segments": segments(row, start, width),
                "uptime": ups.get(component),
            }
            for component, row in rows.items()
        ],
    }
