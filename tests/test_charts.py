"""Server-drawn charts: gaps stay gaps, one point per pixel at most, thresholds where they
belong, readable axes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings

from metrics.rollups import Point
from opsconsole import charts

END = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _minutes(values: Sequence[float | None], end: datetime = END) -> list[tuple[datetime, float]]:
    start = end - timedelta(minutes=len(values))
    return [(start + timedelta(minutes=i), v) for i, v in enumerate(values) if v is not None]


def _xs(segment: dict) -> list[float]:
    return [float(p.split(",")[0]) for p in segment["points"].split()]


def test_it_splits_the_line_where_buckets_are_missing() -> None:
    values: list[float | None] = [10.0] * 20 + [None] * 5 + [20.0] * 20
    chart = charts.line_chart(
        _minutes(values), title="t", unit="ms", start=END - timedelta(minutes=45), end=END
    )
    assert len(chart["segments"]) == 2
    first, second = chart["segments"]
    assert max(_xs(first)) < min(_xs(second))


def test_it_keeps_one_line_across_regular_buckets_and_a_lone_sample_is_a_dot() -> None:
    points = _minutes([1.0] * 30)
    chart = charts.line_chart(points, title="t", unit="", start=END - timedelta(hours=1), end=END)
    assert len(chart["segments"]) == 1
    lone = charts.line_chart(
        [(END - timedelta(minutes=5), 3.0)], title="t", unit="", start=END - timedelta(hours=1),
        end=END,
    )  # fmt: skip
    assert lone["segments"][0]["dot"] is not None


def test_it_draws_at_most_one_point_per_pixel_column_keeping_the_extremes() -> None:
    # 30 days of minutes: 43,200 samples with one spike.
    values = [float(i % 50) for i in range(43_200)]
    values[20_000] = 999.0
    start = END - timedelta(days=30)
    chart = charts.line_chart(
        _minutes(values), title="t", unit="%", start=start, end=END, width=400
    )
    plot_width = chart["plot"]["w"]
    assert chart["point_count"] <= plot_width
    assert chart["peak"] == 999.0
    # The spike survives in the min/max band even though the line shows averages.
    ys = [float(p.split(",")[1]) for p in chart["segments"][0]["band"].split()]
    top = min(ys)
    assert top == pytest.approx(chart["plot"]["y"], abs=chart["plot"]["h"] * 0.05)
    assert len(chart["hover"]) <= charts.MAX_HOVER_AREAS


def test_it_places_threshold_lines_at_their_value() -> None:
    chart = charts.line_chart(
        _minutes([50.0] * 60),
        title="p95",
        unit="ms",
        start=END - timedelta(hours=1),
        end=END,
        thresholds=[charts.Threshold(200.0, "target", "warning")],
    )
    plot = chart["plot"]
    line = chart["thresholds"][0]
    tick_200 = next(t for t in chart["y_ticks"] if t["label"] == "200 ms")
    assert line["y"] == tick_200["y"]
    data_y = float(chart["segments"][0]["points"].split()[0].split(",")[1])
    # 50 ms on a 0..200 axis sits a quarter of the way up.
    assert data_y == pytest.approx(plot["bottom"] - plot["h"] * 50 / 200, abs=0.2)
    assert "200 ms" in line["label"]


def test_the_value_axis_is_round_and_carries_the_unit() -> None:
    chart = charts.line_chart(
        _minutes([0.0, 37.0, 81.0]), title="cpu", unit="%", start=END - timedelta(hours=1),
        end=END,
    )  # fmt: skip
    labels = [t["label"] for t in chart["y_ticks"]]
    assert labels == ["0%", "25%", "50%", "75%", "100%"]


@override_settings(TIME_ZONE="Europe/Berlin")
@pytest.mark.parametrize(
    ("span", "expected_first"),
    [
        (timedelta(hours=1), ["12:00", "12:10", "12:20"]),  # local time: UTC+1
        (timedelta(hours=24), ["18:00", "Mar 10", "06:00", "12:00"]),  # midnight names the day
        (timedelta(days=30), ["Feb 09", "Feb 14", "Feb 19"]),
    ],
)
def test_time_labels_are_local_and_the_step_suits_the_span(
    span: timedelta, expected_first: list[str]
) -> None:
    chart = charts.line_chart([], title="t", unit="", start=END - span, end=END, width=560)
    labels = [t["label"] for t in chart["x_ticks"]]
    xs = [t["x"] for t in chart["x_ticks"]]
    assert xs == sorted(xs) and chart["plot"]["x"] <= xs[0] and xs[-1] <= chart["plot"]["right"]
    assert 3 <= len(labels) <= 8
    if span == timedelta(days=30):
        assert all(label[:3] in ("Feb", "Mar") for label in labels)
    else:
        assert labels[: len(expected_first)] == expected_first


def test_markers_are_clipped_to_the_plot_and_labelled() -> None:
    start = END - timedelta(hours=6)
    chart = charts.line_chart(
        [],
        title="t",
        unit="",
        start=start,
        end=END,
        markers=[
            (start - timedelta(hours=1), start + timedelta(hours=1), "Maintenance window"),
            (END - timedelta(days=2), END - timedelta(days=1), "outside"),
        ],
    )
    assert len(chart["markers"]) == 1
    marker = chart["markers"][0]
    assert marker["x"] == chart["plot"]["x"]
    assert marker["w"] == pytest.approx(chart["plot"]["w"] / 6, abs=0.2)
    assert marker["label"].startswith("Maintenance window")
    assert chart["empty"]


def test_it_takes_rollup_points_with_their_min_and_max() -> None:
    at = END - timedelta(hours=2)
    chart = charts.line_chart(
        [Point(at, 10.0, 2.0, 30.0, 60), Point(at + timedelta(hours=1), 12.0, 5.0, 20.0, 60)],
        title="t",
        unit="ms",
        start=END - timedelta(hours=6),
        end=END,
    )
    assert chart["peak"] == 30.0 and chart["latest"] == 12.0
    assert "max 30" in chart["hover"][0]["title"]
