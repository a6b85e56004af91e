"""The analyst plots as standalone SVG (pure; no Flask, no JS): mean score with 95% CI by arm
over the time points, and completion bars by time point and arm.

Arms differ by colour AND by marker, line dash and bar hatching, so that the plots survive
colour blindness and a black-and-white printer. Every text passed in is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from pro_app.analyst.plot_layout import (
    INK,
    Frame,
    PlotText,
    SeriesStyle,
    dash_attribute,
    empty_notice,
    frame_for,
    legend_entry,
    marker,
    open_svg,
    style,
    x_labels,
    y_axis,
)


@dataclass(frozen=True)
class MeanPoint:
    """One arm at one time point: mean and 95% CI (None = no value) and the tooltip text."""

    mean: float | None
    low: float | None = None
    high: float | None = None
    tooltip: str = ""


@dataclass(frozen=True)
class MeanSeries:
    """One arm's points, one per x label (same order)."""

    label: str
    points: Sequence[MeanPoint]


@dataclass(frozen=True)
class Bar:
    """One arm at one time point: a percentage (None = nothing expected yet) and its tooltip."""

    value: float | None
    tooltip: str = ""


@dataclass(frozen=True)
class BarSeries:
    label: str
    bars: Sequence[Bar]


def runs(values: Sequence[float | None]) -> list[list[int]]:
    """Indexes of consecutive present values: a missing value breaks the line."""
    found: list[list[int]] = []
    current: list[int] = []
    for index, value in enumerate(values):
        if value is None:
            if current:
                found.append(current)
            current = []
        else:
            current.append(index)
    if current:
        found.append(current)
    return found


def mean_ci_svg(series: Sequence[MeanSeries], text: PlotText, chart_id: str) -> Markup:
    """Means with 95% CI error bars by arm over the time points, on a 0–100 axis."""
    frame = frame_for(text, len(series))
    count = len(text.x_labels)
    parts = open_svg(frame, text, chart_id)
    parts += y_axis(frame, text.y_label, suffix="")
    parts += x_labels(frame, text.x_labels)
    spread = min(10.0, frame.band(count) / (len(series) + 2))
    for index, one in enumerate(series):
        look = style(index)
        shift = (index - (len(series) - 1) / 2) * spread  # side by side: CIs never overlap
        xs = [frame.x(i, count) + shift for i in range(count)]
        means = [point.mean for point in one.points]
        for run in runs(means):
            if len(run) > 1:
                coordinates = " ".join(f"{xs[i]:.2f},{frame.y(means[i] or 0.0)}" for i in run)
                parts.append(
                    f'<polyline class="line series-{index}" points="{coordinates}" fill="none" '
                    f'stroke="{look.colour}" stroke-width="2"{dash_attribute(look)}/>'
                )
        for i, point in enumerate(one.points):
            if point.mean is not None:
                parts.append(_mean_point(frame, look, index, xs[i], point))
        parts.append(legend_entry(frame, look, index, one.label, line=True))
    if text.empty and not any(p.mean is not None for one in series for p in one.points):
        parts.append(empty_notice(frame, text.empty))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped


def bars_svg(series: Sequence[BarSeries], text: PlotText, chart_id: str) -> Markup:
    """Grouped bars of a percentage (0–100) by time point, one bar per arm."""
    frame = frame_for(text, len(series))
    count = len(text.x_labels)
    parts = open_svg(frame, text, chart_id)
    parts.append("<defs>")
    for index in range(len(series)):
        look = style(index)
        if look.hatched:
            parts.append(
                f'<pattern id="{escape(chart_id)}-hatch-{index}" width="6" height="6" '
                'patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
                '<rect width="6" height="6" fill="#ffffff"/>'
                f'<line x1="0" y1="0" x2="0" y2="6" stroke="{look.colour}" stroke-width="3"/>'
                "</pattern>"
            )
    parts.append("</defs>")
    parts += y_axis(frame, text.y_label, suffix="%")
    parts += x_labels(frame, text.x_labels)
    band = frame.band(count)
    width = band * 0.8 / max(len(series), 1)
    baseline = frame.y(0)
    for index, one in enumerate(series):
        look = style(index)
        fill = f"url(#{escape(chart_id)}-hatch-{index})" if look.hatched else look.colour
        for i, bar in enumerate(one.bars):
            left = frame.left + band * i + band * 0.1 + width * index
            centre = round(left + width / 2, 2)
            tip = f"<title>{escape(bar.tooltip)}</title>" if bar.tooltip else ""
            if bar.value is None:
                parts.append(
                    f'<text class="bar-missing series-{index}" x="{centre}" y="{baseline - 4}" '
                    f'text-anchor="middle" font-size="12" fill="{INK}">–{tip}</text>'
                )
                continue
            top = frame.y(bar.value)
            parts.append(
                f'<g class="bar series-{index}">{tip}'
                f'<rect x="{left:.2f}" y="{top}" width="{width:.2f}" '
                f'height="{max(baseline - top, 0):.2f}" fill="{fill}" '
                f'stroke="{look.colour}" stroke-width="1.5"/>'
                f'<text x="{centre}" y="{top - 4}" text-anchor="middle" font-size="10" '
                f'fill="{INK}">{bar.value:.0f}%</text></g>'
            )
        parts.append(legend_entry(frame, look, index, one.label, line=False, fill=fill))
    if text.empty and not any(b.value is not None for one in series for b in one.bars):
        parts.append(empty_notice(frame, text.empty))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped


def svg_document(markup: Markup) -> str:
    """The SVG as a file of its own (a download)."""
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{markup}\n'


def _mean_point(frame: Frame, look: SeriesStyle, index: int, x: float, point: MeanPoint) -> str:
    y = frame.y(point.mean or 0.0)
    parts = [f'<g class="point series-{index}" data-mean="{point.mean}">']
    if point.tooltip:
        parts.append(f"<title>{escape(point.tooltip)}</title>")
    if point.low is not None and point.high is not None:
        low, high = frame.y(point.low), frame.y(point.high)
        stroke = f'stroke="{look.colour}" stroke-width="1.5"'
        parts.append(
            f'<g class="ci" data-low="{point.low}" data-high="{point.high}">'
            f'<line x1="{x:.2f}" y1="{low}" x2="{x:.2f}" y2="{high}" {stroke}/>'
            f'<line x1="{x - 4:.2f}" y1="{low}" x2="{x + 4:.2f}" y2="{low}" {stroke}/>'
            f'<line x1="{x - 4:.2f}" y1="{high}" x2="{x + 4:.2f}" y2="{high}" {stroke}/></g>'
        )
    parts.append(marker(look, x, y))
    parts.append("</g>")
    return "".join(parts)
