"""The score chart's SVG: 0–100 scale, gaps for missing scores, the reference line, escaping."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from pro_app.staff.score_chart import (
    ChartLayout,
    ChartPoint,
    ReferenceLine,
    chart_svg,
    reference_value,
    runs,
)

SVG = "{http://www.w3.org/2000/svg}"
LAYOUT = ChartLayout()


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))  # noqa: S314 - markup we just generated, not input


def points(*values: float | None) -> list[ChartPoint]:
    return [ChartPoint(f"T{index}", value) for index, value in enumerate(values)]


def test_y_axis_runs_from_0_at_the_bottom_to_100_at_the_top() -> None:
    assert LAYOUT.y(0) == LAYOUT.plot_bottom
    assert LAYOUT.y(100) == LAYOUT.plot_top
    assert LAYOUT.y(50) == pytest.approx((LAYOUT.plot_top + LAYOUT.plot_bottom) / 2)
    assert LAYOUT.y(25) > LAYOUT.y(75)  # higher scores are drawn higher up


def test_values_outside_the_scale_are_clamped() -> None:
    assert LAYOUT.y(-5) == LAYOUT.y(0)
    assert LAYOUT.y(130) == LAYOUT.y(100)


def test_time_points_are_evenly_spaced() -> None:
    xs = [LAYOUT.x(i, 3) for i in range(3)]
    assert xs[0] == LAYOUT.left
    assert xs[2] == LAYOUT.width - LAYOUT.right
    assert xs[1] - xs[0] == pytest.approx(xs[2] - xs[1])
    assert LAYOUT.x(0, 1) == pytest.approx(
        LAYOUT.left + (LAYOUT.width - LAYOUT.left - LAYOUT.right) / 2
    )


def test_points_sit_at_their_scores() -> None:
    svg = parse(chart_svg(points(0, 50, 100), title="PF2", chart_id="c"))
    circles = svg.findall(f"{SVG}circle")
    assert [float(c.get("cy", "")) for c in circles] == [LAYOUT.y(0), LAYOUT.y(50), LAYOUT.y(100)]
    assert [c.find(f"{SVG}title").text for c in circles] == ["T0: 0.0", "T1: 50.0", "T2: 100.0"]  # type: ignore[union-attr]


def test_missing_scores_leave_gaps() -> None:
    assert runs(points(10, None, 30, 40)) == [[0], [2, 3]]
    assert runs(points(None, None)) == []
    svg = parse(chart_svg(points(10, None, 30, 40), title="FA", chart_id="c"))
    assert len(svg.findall(f"{SVG}circle")) == 3
    lines = svg.findall(f"{SVG}polyline")
    assert len(lines) == 1  # only 30 → 40 is joined; nothing is drawn across the gap
    assert lines[0].get("points", "").count(",") == 2


def test_no_scores_at_all_draws_axes_only() -> None:
    svg = parse(chart_svg(points(None, None, None), title="QL2", chart_id="c"))
    assert svg.findall(f"{SVG}circle") == []
    assert svg.findall(f"{SVG}polyline") == []
    assert [t.text for t in svg.findall(f"{SVG}text")][-3:] == ["T0", "T1", "T2"]


def test_reference_line_position() -> None:
    svg = parse(
        chart_svg(
            points(70, 55),
            title="QL2",
            chart_id="c",
            reference=ReferenceLine(60, "worse by 10"),
        )
    )
    reference = svg.find(f"{SVG}line[@class='chart-reference']")
    assert reference is not None
    assert float(reference.get("y1", "")) == float(reference.get("y2", "")) == LAYOUT.y(60)
    assert reference.get("stroke-dasharray")
    assert reference.find(f"{SVG}title").text == "worse by 10"  # type: ignore[union-attr]


def test_reference_value_follows_the_direction_of_worsening() -> None:
    assert reference_value(70, 10, higher_is_worse=False) == 60  # functioning: down is worse
    assert reference_value(20, 10, higher_is_worse=True) == 30  # symptoms: up is worse
    assert reference_value(None, 10, higher_is_worse=False) is None
    assert reference_value(5, 10, higher_is_worse=False) is None  # would fall below 0
    assert reference_value(95, 10, higher_is_worse=True) is None
    assert reference_value(10, 10, higher_is_worse=False) == 0


def test_accessible_name_and_escaping() -> None:
    markup = chart_svg(
        [ChartPoint("<b>T0</b>", 10, tooltip="a & b")],
        title='Fatigue "<script>"',
        chart_id="chart-x",
    )
    svg = parse(markup)
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "chart-x-title"
    assert svg.find(f"{SVG}title").text == 'Fatigue "<script>"'  # type: ignore[union-attr]
    assert "<script>" not in str(markup)
    assert "<b>" not in str(markup)
    assert "style=" not in str(markup)


def test_grid_lines_at_quarters() -> None:
    svg = parse(chart_svg(points(50), title="x", chart_id="c"))
    labels = [t.text for t in svg.findall(f"{SVG}text") if t.get("class") == "chart-y-label"]
    assert labels == ["0", "25", "50", "75", "100"]
    assert re.search(r"viewBox=\"0 0 \d+ \d+\"", str(chart_svg(points(1), title="x", chart_id="c")))
