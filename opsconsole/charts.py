"""Time-series charts drawn on the server as SVG geometry (rendered by admin/ops_chart.html).

No client library: the chart is part of the page's HTML, so it renders in the same request,
works without JavaScript and costs no bundle. This module turns points into coordinates:

- downsampling to about one point per pixel column (average of averages, min of minimums,
  max of maximums), drawn as a line with a min-max band;
- gaps drawn as gaps: the line is split where two consecutive points are more than 1.5 bucket
  widths apart (a bucket is the series' usual spacing, or `bucket_seconds`);
- a time axis in local time with a step chosen for the span (5 minutes .. 7 days), a value axis
  with units and round steps, dashed threshold lines, shaded markers (maintenance windows,
  deploys), and invisible hover areas whose <title> reads out the values under the pointer.

Points are (datetime, value) pairs or objects with `at`, `avg` (and optionally `min`, `max`),
such as metrics.rollups.Point.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from statistics import median
from typing import Any, NamedTuple

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 560, 160
# Room for the value labels (left), the time labels (bottom) and breathing space.
LEFT, RIGHT, TOP, BOTTOM = 52, 10, 8, 22
# A gap is more than this many bucket widths between consecutive points.
GAP_BUCKETS = 1.5
# Hover areas per chart at most (each carries a <title>; more would bloat the page).
MAX_HOVER_AREAS = 100
# Candidate time-axis steps, smallest first.
TIME_STEPS = tuple(
    timedelta(minutes=m) for m in (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080)
)
# Pixels a time label needs.
TIME_LABEL_PX = 70


class Sample(NamedTuple):
    t: float  # epoch seconds
    avg: float
    lo: float
    hi: float


class Threshold(NamedTuple):
    value: float
    label: str
    level: str = "warning"  # warning | critical


class Marker(NamedTuple):
    start: datetime
    end: datetime
    label: str


def as_samples(points: Iterable[Any]) -> list[Sample]:
    """(datetime, value) pairs or objects with at/avg[/min/max], as samples in time order."""
    out = []
    for p in points:
        if isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], datetime):
            at, value = p
            if value is None:
                continue
            v = float(value)
            out.append(Sample(at.timestamp(), v, v, v))
            continue
        avg = float(p.avg)
        lo = float(getattr(p, "min", avg))
        hi = float(getattr(p, "max", avg))
        out.append(Sample(p.at.timestamp(), avg, lo, hi))
    out.sort(key=lambda s: s.t)
    return out


def split_gaps(samples: Sequence[Sample], bucket: float | None = None) -> list[list[Sample]]:
    """Runs of samples with no gap inside (a gap: more than GAP_BUCKETS buckets apart).

    `bucket` defaults to the series' median spacing."""
    if not samples:
        return []
    if bucket is None:
        diffs = [b.t - a.t for a, b in zip(samples, samples[1:], strict=False) if b.t > a.t]
        bucket = median(diffs) if diffs else 0.0
    runs: list[list[Sample]] = [[samples[0]]]
    for prev, cur in zip(samples, samples[1:], strict=False):
        if bucket and cur.t - prev.t > GAP_BUCKETS * bucket:
            runs.append([])
        runs[-1].append(cur)
    return runs


def downsample(samples: Sequence[Sample], start: float, end: float, columns: int) -> list[Sample]:
    """At most one sample per pixel column of [start, end): avg of averages, min, max.

    Each output sample sits at the mean time of the samples it stands for."""
    if len(samples) <= columns:
        return list(samples)
    scale = columns / max(end - start, 1e-9)
    last = columns - 1
    out: list[Sample] = []
    current = -1
    n = t_sum = avg_sum = 0.0
    lo = hi = 0.0
    for t, avg, s_lo, s_hi in samples:
        col = int((t - start) * scale)
        col = last if col > last else 0 if col < 0 else col
        if col != current:
            if n:
                out.append(Sample(t_sum / n, avg_sum / n, lo, hi))
            current, n, t_sum, avg_sum, lo, hi = col, 0.0, 0.0, 0.0, s_lo, s_hi
        n += 1
        t_sum += t
        avg_sum += avg
        if s_lo < lo:
            lo = s_lo
        if s_hi > hi:
            hi = s_hi
    if n:
        out.append(Sample(t_sum / n, avg_sum / n, lo, hi))
    return out


def nice_step(span: float, ticks: int = 4) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) giving about `ticks` intervals."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * power >= raw:
            return m * power
    return 10 * power


def format_value(value: float, unit: str, step: float | None = None) -> str:
    """A figure with its unit: 1 decimal under 10 (or as the axis step needs), k/M above 10^4."""
    magnitude = abs(value)
    if magnitude >= 1e6:
        text = f"{value / 1e6:.1f}M".replace(".0M", "M")
    elif magnitude >= 1e4:
        text = f"{value / 1e3:.1f}k".replace(".0k", "k")
    else:
        decimals = 0
        if step is not None and step < 1:
            decimals = min(3, max(0, -math.floor(math.log10(step))))
            if step * 10**decimals % 1:
                decimals += 1
        elif step is None and magnitude < 10:
            decimals = 1 if magnitude >= 1 or magnitude == 0 else 2
        text = f"{value:.{decimals}f}"
    if not unit:
        return text
    return f"{text}{unit}" if unit in ("%", "/s", "/min") else f"{text} {unit}"


def time_ticks(start: datetime, end: datetime, plot_width: float) -> list[tuple[datetime, str]]:
    """Tick times (local time, on round minutes/hours/days) and their labels."""
    span = (end - start).total_seconds()
    most = max(2, int(plot_width // TIME_LABEL_PX))
    step = next((s for s in TIME_STEPS if span / s.total_seconds() <= most), TIME_STEPS[-1])
    local_start = timezone.localtime(start)
    midnight = local_start.replace(hour=0, minute=0, second=0, microsecond=0)
    if step >= timedelta(days=1):
        first = midnight + timedelta(days=1) if midnight < local_start else midnight
        days = int(step.total_seconds() // 86400)
        fmt = "%b %d"
        ticks = []
        at = first
        while at <= end:
            ticks.append(at)
            at = (at + timedelta(days=days)).replace(hour=0)
    else:
        seconds = step.total_seconds()
        offset = (local_start - midnight).total_seconds()
        first = midnight + timedelta(seconds=math.ceil(offset / seconds) * seconds)
        fmt = "%H:%M"
        ticks = []
        at = first
        while at <= end:
            ticks.append(at)
            at = at + step
    labels = []
    for at in ticks:
        local = timezone.localtime(at)
        # On a span over a day, midnight ticks of an hourly axis name the day instead.
        if fmt == "%H:%M" and span >= 86400 and local.hour == 0 and local.minute == 0:
            labels.append((at, local.strftime("%b %d")))
        else:
            labels.append((at, local.strftime(fmt)))
    return labels


def line_chart(
    points: Iterable[Any],
    *,
    title: str,
    unit: str,
    start: datetime,
    end: datetime,
    thresholds: Iterable[Threshold | tuple[Any, ...]] = (),
    markers: Iterable[Marker | tuple[datetime, datetime, str]] = (),
    width: int = WIDTH,
    height: int = HEIGHT,
    bucket_seconds: float | None = None,
    label: str = "",
) -> dict[str, Any]:
    """One chart's geometry and read-outs, for `{% include "admin/ops_chart.html" %}`.

    Long because it is one pass from points to every drawn part, in drawing order."""
    samples = [s for s in as_samples(points) if start.timestamp() <= s.t <= end.timestamp()]
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    t0, t1 = start.timestamp(), end.timestamp()
    lines = [Threshold(*t) if not isinstance(t, Threshold) else t for t in thresholds]
    lines = [t for t in lines if t.value is not None]
    # Value range: from 0 (or the lowest value when below 0) to the top of data and thresholds.
    highs = [s.hi for s in samples] + [t.value for t in lines]
    lows = [s.lo for s in samples] + [t.value for t in lines]
    lo = min([0.0, *lows])
    hi = max([*highs, lo]) if highs else 1.0
    if hi <= lo:
        hi = lo + 1.0
    step = nice_step(hi - lo)
    lo = math.floor(lo / step) * step
    hi = math.ceil(hi / step) * step

    def x_of(t: float) -> float:
        return LEFT + (t - t0) / max(t1 - t0, 1e-9) * plot_w

    def y_of(v: float) -> float:
        return TOP + plot_h - (v - lo) / (hi - lo) * plot_h

    segments = []
    drawn: list[Sample] = []
    for run in split_gaps(samples, bucket_seconds):
        shown = downsample(run, t0, t1, int(plot_w))
        drawn.extend(shown)
        xy = [(x_of(s.t), y_of(s.avg)) for s in shown]
        band = ""
        if any(s.hi != s.lo for s in shown) and len(shown) > 1:
            upper = [f"{x_of(s.t):.1f},{y_of(s.hi):.1f}" for s in shown]
            lower = [f"{x_of(s.t):.1f},{y_of(s.lo):.1f}" for s in reversed(shown)]
            band = " ".join(upper + lower)
        segments.append(
            {
                "points": " ".join(f"{x:.1f},{y:.1f}" for x, y in xy),
                "band": band,
                # A lone sample is a dot: a one-point polyline draws nothing.
                "dot": {"x": round(xy[0][0], 1), "y": round(xy[0][1], 1)} if len(xy) == 1 else None,
            }
        )

    value_ticks = []
    v = lo
    while v <= hi + step / 1000:
        value_ticks.append({"y": round(y_of(v), 1), "label": format_value(v, unit, step)})
        v += step
    peak = max((s.hi for s in samples), default=None)
    hover = _hover(drawn, unit, x_of, plot_w)
    return {
        "title": title,
        "label": label or title,
        "unit": unit,
        "width": width,
        "height": height,
        "plot": {
            "x": LEFT,
            "y": TOP,
            "w": plot_w,
            "h": plot_h,
            "right": LEFT + plot_w,
            "bottom": TOP + plot_h,
        },  # fmt: skip
        "empty": not samples,
        "segments": segments,
        "point_count": len(drawn),
        "x_ticks": [
            {"x": round(x_of(at.timestamp()), 1), "label": text}
            for at, text in time_ticks(start, end, plot_w)
        ],
        "y_ticks": value_ticks,
        "thresholds": [
            {
                "y": round(y_of(t.value), 1),
                "label": f"{t.label} {format_value(t.value, unit)}",
                "level": t.level,
            }
            for t in lines
        ],  # fmt: skip
        "markers": _markers(markers, t0, t1, x_of),
        "hover": hover,
        "hover_svg": hover_svg(hover, TOP, plot_h),
        "latest": samples[-1].avg if samples else None,
        "peak": peak,
        "latest_text": format_value(samples[-1].avg, unit) if samples else "",
        "peak_text": format_value(peak, unit) if peak is not None else "",
    }


def _markers(
    markers: Iterable[Marker | tuple[datetime, datetime, str]],
    t0: float,
    t1: float,
    x_of: Any,
) -> list[dict[str, Any]]:
    out = []
    for m in markers:
        start, end, label = m
        a, b = max(start.timestamp(), t0), min(end.timestamp(), t1)
        if b <= a:
            continue
        x = x_of(a)
        local = timezone.localtime
        out.append(
            {
                "x": round(x, 1),
                "w": round(max(x_of(b) - x, 2.0), 1),
                "label": f"{label} ({local(start):%b %d %H:%M} – {local(end):%b %d %H:%M})",
            }
        )
    return out


def hover_svg(areas: list[dict[str, Any]], top: float, height: float) -> SafeString:
    """The hover areas as SVG markup, built here rather than by a template loop (a chart has
    up to MAX_HOVER_AREAS of them; the template engine would take longer than the chart)."""
    return mark_safe(  # noqa: S308 (every interpolated text is escaped)
        "".join(
            f'<rect class="ops-chart-hit" x="{a["x"]}" y="{top}" width="{a["w"]}" '
            f'height="{height}"><title>{escape(a["title"])}</title></rect>'
            for a in areas
        )
    )


def _hover(drawn: list[Sample], unit: str, x_of: Any, plot_w: float) -> list[dict[str, Any]]:
    """Invisible areas across the plot, each reading out the samples under it."""
    if not drawn:
        return []
    per_area = max(1, math.ceil(len(drawn) / MAX_HOVER_AREAS))
    areas = []
    for i in range(0, len(drawn), per_area):
        group = drawn[i : i + per_area]
        left = x_of(group[0].t)
        right = x_of(group[-1].t)
        avg = sum(s.avg for s in group) / len(group)
        lo, hi = min(s.lo for s in group), max(s.hi for s in group)
        when = timezone.localtime(
            datetime.fromtimestamp(group[0].t, tz=timezone.get_current_timezone())
        )
        text = f"{when:%Y-%m-%d %H:%M}: {format_value(avg, unit)}"
        if hi != lo:
            text += f" (min {format_value(lo, unit)}, max {format_value(hi, unit)})"
        areas.append({"x": left, "w": right - left, "title": text, "cx": (left + right) / 2})
    # Each area reaches halfway to its neighbours, so the whole plot answers the pointer.
    for i, area in enumerate(areas):
        lo_x = (areas[i - 1]["cx"] + area["cx"]) / 2 if i else area["cx"] - 4
        hi_x = (area["cx"] + areas[i + 1]["cx"]) / 2 if i + 1 < len(areas) else area["cx"] + 4
        area["x"], area["w"] = round(lo_x, 1), round(max(hi_x - lo_x, 1.0), 1)
    return areas
