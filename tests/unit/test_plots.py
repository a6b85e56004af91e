"""The analyst plots' SVG: escaping, gaps for missing values, CI bars, arms told apart without
colour, completion bars."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from markupsafe import Markup

from pro_app.analyst.plot_layout import STYLES, Frame, PlotText, title_lines
from pro_app.analyst.plots import (
    Bar,
    BarSeries,
    MeanPoint,
    MeanSeries,
    bars_svg,
    mean_ci_svg,
    runs,
    svg_document,
)

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script> & \' "'
LABELS = ("Baseline", "Month 3", "Month 6")


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))  # noqa: S314 - markup we just generated, not input


def of_class(svg: ET.Element, tag: str, *classes: str) -> list[ET.Element]:
    return [
        e
        for e in svg.iter(f"{SVG}{tag}")
        if e.get("class", "").split()[: len(classes)] == list(classes)
    ]


def text(**overrides: object) -> PlotText:
    values: dict[str, object] = {"title": "Physical functioning (PF2)", "y_label": "Mean"}
    values |= {"x_labels": LABELS, "empty": "No data"} | overrides
    return PlotText(**values)  # type: ignore[arg-type]


def two_arms(*first: float | None) -> list[MeanSeries]:
    return [
        MeanSeries(
            "TAE",
            [
                MeanPoint(v, None if v is None else v - 5, None if v is None else v + 5, f"tip {v}")
                for v in first
            ],
        ),
        MeanSeries("Control", [MeanPoint(50, 40, 60, "c"), MeanPoint(55), MeanPoint(None)]),
    ]


def test_hostile_labels_are_escaped_everywhere() -> None:
    series = [
        MeanSeries(HOSTILE, [MeanPoint(10, 5, 15, HOSTILE), MeanPoint(None), MeanPoint(20)]),
    ]
    plot_text = PlotText(HOSTILE, HOSTILE, (HOSTILE, "b", "c"), note=HOSTILE, empty=HOSTILE)
    for markup in (
        mean_ci_svg(series, plot_text, 'x"><script>'),
        bars_svg(
            [BarSeries(HOSTILE, [Bar(50, HOSTILE), Bar(None, HOSTILE), Bar(1)])], plot_text, "b"
        ),
    ):
        assert isinstance(markup, Markup)
        assert "<script>" not in markup
        svg = parse(markup)  # well-formed despite the quotes and ampersands
        texts = [t.text for t in svg.iter(f"{SVG}text")] + [t.text for t in svg.iter(f"{SVG}title")]
        assert HOSTILE in texts  # the words survive, as text


def test_missing_values_break_the_line() -> None:
    assert runs([1.0, None, 2.0, 3.0]) == [[0], [2, 3]]
    assert runs([None, None]) == []
    svg = parse(mean_ci_svg(two_arms(10, None, 30), text(x_labels=LABELS), "p"))
    assert of_class(svg, "polyline", "line", "series-0") == []  # no two neighbours: no line
    assert len(of_class(svg, "g", "point", "series-0")) == 2
    joined = parse(mean_ci_svg(two_arms(10, 20, None), text(), "p"))
    lines = of_class(joined, "polyline", "line", "series-0")
    assert len(lines) == 1
    assert len(lines[0].get("points", "").split()) == 2


def test_ci_bars_span_low_to_high_on_the_0_to_100_axis() -> None:
    frame = Frame(legend_rows=2)
    svg = parse(mean_ci_svg(two_arms(40, 60, 80), text(), "p"))
    point = of_class(svg, "g", "point", "series-0")[1]
    assert float(point.get("data-mean", "")) == 60
    interval = point.find(f"{SVG}g")
    assert interval is not None
    assert (interval.get("data-low"), interval.get("data-high")) == ("55", "65")
    whisker = interval.find(f"{SVG}line")
    assert whisker is not None
    assert float(whisker.get("y1", "")) == frame.y(55)
    assert float(whisker.get("y2", "")) == frame.y(65)
    assert frame.y(0) > frame.y(100)  # higher scores are drawn higher up
    assert frame.y(130) == frame.y(100)  # an interval past the scale is clipped to it
    tooltip = point.find(f"{SVG}title")
    assert tooltip is not None
    assert tooltip.text == "tip 60"


def test_a_single_value_has_no_interval() -> None:
    svg = parse(mean_ci_svg(two_arms(40, 60, 80), text(), "p"))
    lone = of_class(svg, "g", "point", "series-1")[1]
    assert lone.find(f"{SVG}g") is None


def test_arms_differ_in_marker_and_dash_not_only_colour() -> None:
    first, second = STYLES[0], STYLES[1]
    assert first.marker != second.marker
    assert first.dash != second.dash
    assert first.hatched != second.hatched
    svg = parse(mean_ci_svg(two_arms(40, 60, 80), text(), "p"))
    legend = of_class(svg, "g", "legend")
    assert [g.find(f"{SVG}text").text for g in legend] == ["TAE", "Control"]  # type: ignore[union-attr]
    assert of_class(svg, "g", "point", "series-0")[0].find(f"{SVG}circle") is not None
    assert of_class(svg, "g", "point", "series-1")[0].find(f"{SVG}rect") is not None


def test_title_role_and_axis_labels() -> None:
    svg = parse(mean_ci_svg(two_arms(40, 60, 80), text(note="provisional scoring"), "plot-x"))
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "plot-x-title plot-x-note"
    title = svg.find(f"{SVG}title")
    assert title is not None
    assert title.text == "Physical functioning (PF2)"
    assert [t.text for t in of_class(svg, "text", "x-label")] == list(LABELS)
    ticks = [t.text for t in svg.iter(f"{SVG}text") if t.get("text-anchor") == "end"]
    assert ticks == ["0", "25", "50", "75", "100"]
    assert svg_document(Markup("<svg/>")).startswith('<?xml version="1.0" encoding="UTF-8"?>')


def test_an_empty_plot_says_so() -> None:
    empty = [MeanSeries("TAE", [MeanPoint(None)] * 3)]
    svg = parse(mean_ci_svg(empty, text(), "p"))
    assert [t.text for t in of_class(svg, "text", "plot-empty")] == ["No data"]
    assert of_class(parse(mean_ci_svg(two_arms(1, 2, 3), text(), "p")), "text", "plot-empty") == []


def test_bars_show_rates_with_hatching_and_a_dash_for_nothing_expected() -> None:
    series = [
        BarSeries("TAE", [Bar(100.0, "4 of 4"), Bar(50.0, "1 of 2"), Bar(None, "none yet")]),
        BarSeries("Control", [Bar(0.0, "0 of 1"), Bar(None), Bar(None)]),
    ]
    frame = Frame(legend_rows=2)
    svg = parse(bars_svg(series, text(), "plot-completion"))
    first = of_class(svg, "g", "bar", "series-0")
    assert len(first) == 2
    rect = first[0].find(f"{SVG}rect")
    assert rect is not None
    assert float(rect.get("y", "")) == frame.y(100)
    assert float(rect.get("height", "")) == pytest.approx(frame.y(0) - frame.y(100))
    assert first[0].find(f"{SVG}title").text == "4 of 4"  # type: ignore[union-attr]
    hatched = of_class(svg, "g", "bar", "series-1")[0].find(f"{SVG}rect")
    assert hatched is not None
    assert hatched.get("fill") == "url(#plot-completion-hatch-1)"
    assert svg.find(f".//{SVG}pattern[@id='plot-completion-hatch-1']") is not None
    dashes = of_class(svg, "text", "bar-missing")
    assert len(dashes) == 3
    assert of_class(svg, "text", "plot-empty") == []


def test_long_titles_wrap_onto_two_lines_and_push_the_plot_down() -> None:
    assert title_lines("Physical functioning (PF2)") == ["Physical functioning (PF2)"]
    long = "Compilazione per momento di valutazione e braccio"
    assert title_lines(long, 46) == ["Compilazione per momento di valutazione e", "braccio"]
    assert title_lines(long) == [long]  # 49 characters fit
    endless = " ".join(["parola"] * 30)
    lines = title_lines(endless, 46)
    assert len(lines) == 2
    assert lines[1].endswith("…")
    assert len(lines[1]) <= 46
    short = parse(mean_ci_svg(two_arms(1, 2, 3), text(), "p"))
    longer = long + " nel tempo"
    wrapped = parse(mean_ci_svg(two_arms(1, 2, 3), text(title=longer), "p"))
    tspans = [t.text for t in wrapped.iter(f"{SVG}tspan")]
    assert tspans == ["Compilazione per momento di valutazione e braccio", "nel tempo"]
    assert int(wrapped.get("height", "")) == int(short.get("height", "")) + 18
    assert Frame(title_lines=2).plot_height == Frame().plot_height  # same plot area
