"""A small SVG line chart of one scale's scores over the time points (pure; no Flask, no JS)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

SCORE_MIN = 0.0
SCORE_MAX = 100.0
Y_TICKS = (0, 25, 50, 75, 100)


@dataclass(frozen=True)
class ChartPoint:
    """One time point: its axis label, the score (None = no score) and the tooltip text."""

    label: str
    value: float | None
    tooltip: str = ""


@dataclass(frozen=True)
class ReferenceLine:
    """A horizontal dashed line, e.g. at the clinically relevant change from baseline."""

    value: float
    label: str


@dataclass(frozen=True)
class ChartLayout:
    """Where the plot area lies inside the SVG (user units)."""

    width: int = 340
    height: int = 190
    left: int = 44  # room for the 0–100 labels and half of the first time point's label
    right: int = 30  # half of the last time point's label
    top: int = 12
    bottom: int = 34

    @property
    def plot_top(self) -> float:
        return float(self.top)

    @property
    def plot_bottom(self) -> float:
        return float(self.height - self.bottom)

    def y(self, value: float) -> float:
        """Vertical position of a score: 100 at the top of the plot, 0 at its bottom."""
        clamped = min(max(value, SCORE_MIN), SCORE_MAX)
        share = (clamped - SCORE_MIN) / (SCORE_MAX - SCORE_MIN)
        return round(self.plot_bottom - share * (self.plot_bottom - self.plot_top), 2)

    def x(self, index: int, count: int) -> float:
        """Horizontal position of the index-th of count time points, evenly spaced."""
        inner = self.width - self.left - self.right
        if count <= 1:
            return round(self.left + inner / 2, 2)
        return round(self.left + inner * index / (count - 1), 2)


def reference_value(
    baseline: float | None, threshold: float, *, higher_is_worse: bool
) -> float | None:
    """Baseline moved by the threshold in the direction of deterioration; None off the scale."""
    if baseline is None:
        return None
    value = baseline + threshold if higher_is_worse else baseline - threshold
    return value if SCORE_MIN <= value <= SCORE_MAX else None


def runs(points: Sequence[ChartPoint]) -> list[list[int]]:
    """Indexes of consecutive scored points: a missing score breaks the line."""
    found: list[list[int]] = []
    current: list[int] = []
    for index, point in enumerate(points):
        if point.value is None:
            if current:
                found.append(current)
            current = []
        else:
            current.append(index)
    if current:
        found.append(current)
    return found


def chart_svg(
    points: Sequence[ChartPoint],
    *,
    title: str,
    chart_id: str,
    reference: ReferenceLine | None = None,
    layout: ChartLayout | None = None,
) -> Markup:
    """The chart as inline SVG markup; every text passed in is escaped."""
    layout = layout or ChartLayout()
    count = len(points)
    ident = escape(chart_id)
    parts = [
        f'<svg class="score-chart" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {layout.width} {layout.height}" width="{layout.width}" '
        f'height="{layout.height}" aria-labelledby="{ident}-title">',
        f'<title id="{ident}-title">{escape(title)}</title>',
    ]
    parts += _axes(layout)
    for index, point in enumerate(points):
        x = layout.x(index, count)
        parts.append(
            f'<text class="chart-x-label" x="{x}" y="{layout.height - 12}" '
            f'text-anchor="middle" font-size="11">{escape(point.label)}</text>'
        )
    if reference is not None:
        y = layout.y(reference.value)
        parts.append(
            f'<line class="chart-reference" x1="{layout.left}" y1="{y}" '
            f'x2="{layout.width - layout.right}" y2="{y}" stroke="#b3261e" '
            f'stroke-width="1.5" stroke-dasharray="5 4"><title>{escape(reference.label)}</title>'
            "</line>"
        )
    for run in runs(points):
        if len(run) > 1:
            coordinates = " ".join(
                f"{layout.x(i, count)},{layout.y(points[i].value or 0.0)}" for i in run
            )
            parts.append(
                f'<polyline class="chart-line" points="{coordinates}" fill="none" '
                'stroke="#1d4f91" stroke-width="2"/>'
            )
    for index, point in enumerate(points):
        if point.value is None:
            continue
        tooltip = point.tooltip or f"{point.label}: {point.value:.1f}"
        parts.append(
            f'<circle class="chart-point" cx="{layout.x(index, count)}" '
            f'cy="{layout.y(point.value)}" r="4" fill="#1d4f91">'
            f"<title>{escape(tooltip)}</title></circle>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text above is escaped


def _axes(layout: ChartLayout) -> list[str]:
    right = layout.width - layout.right
    parts = []
    for tick in Y_TICKS:
        y = layout.y(tick)
        parts.append(
            f'<line class="chart-grid" x1="{layout.left}" y1="{y}" x2="{right}" y2="{y}" '
            'stroke="#d0d5dd" stroke-width="1"/>'
            f'<text class="chart-y-label" x="{layout.left - 6}" y="{y + 4}" '
            f'text-anchor="end" font-size="11">{tick}</text>'
        )
    return parts
