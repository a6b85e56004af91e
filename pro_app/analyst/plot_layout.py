"""The parts every analyst plot shares (pure; no Flask): arm styles, the frame of title, note,
legend and plot area, the axes and the legend. Every text passed in is escaped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import escape

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif"
Y_TICKS = (0, 25, 50, 75, 100)
INK = "#1b1f24"
TITLE_Y = 20
TITLE_CHARS = 50  # what fits in one line of the 14-unit bold title across the plot
GRID = "#d0d5dd"


@dataclass(frozen=True)
class SeriesStyle:
    """How one arm is drawn: colour, line dash, marker shape and whether bars are hatched."""

    colour: str
    dash: str  # SVG stroke-dasharray; "" = solid
    marker: str  # circle | square | triangle | diamond
    hatched: bool


# Colours meet 4.5:1 contrast on white; the second arm is dashed, square and hatched.
STYLES = (
    SeriesStyle("#1d4f91", "", "circle", hatched=False),
    SeriesStyle("#a84300", "7 4", "square", hatched=True),
    SeriesStyle("#3d4650", "2 3", "triangle", hatched=False),
    SeriesStyle("#6b2c91", "9 3 2 3", "diamond", hatched=True),
)


def style(index: int) -> SeriesStyle:
    return STYLES[index % len(STYLES)]


@dataclass(frozen=True)
class PlotText:
    """The words around a plot: title, an optional note under it, axis and empty-plot texts."""

    title: str
    y_label: str
    x_labels: Sequence[str]
    note: str = ""
    empty: str = ""  # shown across the plot when it has no value at all


@dataclass(frozen=True)
class Frame:
    """Where things lie inside the SVG (user units): title, note, legend, then the plot area."""

    title_lines: int = 1
    has_note: bool = False
    legend_rows: int = 2
    width: int = 420
    plot_height: int = 170  # the same in every plot, whatever the header above it
    left: int = 58
    right: int = 14
    bottom: int = 42

    @property
    def note_y(self) -> int:
        return TITLE_Y + 18 * self.title_lines

    @property
    def legend_y(self) -> int:
        """The middle of the first legend row."""
        return self.note_y + (18 if self.has_note else 0) - 4

    @property
    def top(self) -> int:
        return self.legend_y + 15 * (self.legend_rows - 1) + 20

    @property
    def height(self) -> int:
        return self.top + self.plot_height + self.bottom

    def y(self, value: float) -> float:
        """0 at the bottom of the plot area, 100 at its top; values outside are clamped."""
        share = (min(max(value, 0.0), 100.0)) / 100.0
        return round(self.top + (1 - share) * self.plot_height, 2)

    def band(self, count: int) -> float:
        return (self.width - self.left - self.right) / max(count, 1)

    def x(self, index: int, count: int) -> float:
        """The centre of the index-th of count evenly spaced time points."""
        return round(self.left + self.band(count) * (index + 0.5), 2)


def frame_for(text: PlotText, series_count: int) -> Frame:
    return Frame(len(title_lines(text.title)), bool(text.note), series_count)


def title_lines(title: str, limit: int = TITLE_CHARS) -> list[str]:
    """The title in at most two lines of about `limit` characters; the rest elided with "…"."""
    lines: list[str] = []
    for word in title.split():
        if lines and len(lines[-1]) + 1 + len(word) <= limit:
            lines[-1] += " " + word
        else:
            lines.append(word)
    if len(lines) > 2:
        lines = [lines[0], " ".join(lines[1:])[: limit - 1].rstrip() + "…"]
    return lines or [""]


def open_svg(frame: Frame, text: PlotText, chart_id: str) -> list[str]:
    """The root element with its accessible name, a white ground, the title and the note."""
    ident = escape(chart_id)
    described = f" {ident}-note" if text.note else ""
    parts = [
        f'<svg class="analyst-plot" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {frame.width} {frame.height}" width="{frame.width}" '
        f'height="{frame.height}" font-family="{FONT}" '
        f'aria-labelledby="{ident}-title{described}">',
        f'<title id="{ident}-title">{escape(text.title)}</title>',
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        f'<text class="plot-title" x="8" y="{TITLE_Y}" font-size="14" font-weight="700" '
        f'fill="{INK}">',
    ]
    for index, line in enumerate(title_lines(text.title)):
        parts.append(f'<tspan x="8" dy="{18 if index else 0}">{escape(line)}</tspan>')
    parts.append("</text>")
    if text.note:
        parts.append(
            f'<text class="plot-note" id="{ident}-note" x="8" y="{frame.note_y}" '
            f'font-size="12" font-style="italic" fill="#8a4b00">{escape(text.note)}</text>'
        )
    return parts


def y_axis(frame: Frame, label: str, suffix: str) -> list[str]:
    """Grid lines at 0, 25, 50, 75 and 100 with their numbers, and the axis label."""
    right = frame.width - frame.right
    parts = []
    for tick in Y_TICKS:
        y = frame.y(tick)
        parts.append(
            f'<line class="grid" x1="{frame.left}" y1="{y}" x2="{right}" y2="{y}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{frame.left - 6}" y="{y + 4}" text-anchor="end" font-size="11" '
            f'fill="{INK}">{tick}{suffix}</text>'
        )
    middle = (frame.top + frame.height - frame.bottom) / 2
    parts.append(
        f'<text class="y-label" x="14" y="{middle}" transform="rotate(-90 14 {middle})" '
        f'text-anchor="middle" font-size="11" fill="{INK}">{escape(label)}</text>'
    )
    return parts


def x_labels(frame: Frame, labels: Sequence[str]) -> list[str]:
    """The time points under the plot area."""
    y = frame.height - frame.bottom + 18
    return [
        f'<text class="x-label" x="{frame.x(i, len(labels))}" y="{y}" text-anchor="middle" '
        f'font-size="12" fill="{INK}">{escape(label)}</text>'
        for i, label in enumerate(labels)
    ]


def dash_attribute(look: SeriesStyle) -> str:
    return f' stroke-dasharray="{look.dash}"' if look.dash else ""


def marker(look: SeriesStyle, x: float, y: float) -> str:
    """The arm's marker shape centred on (x, y)."""
    paint = f'fill="{look.colour}" stroke="#ffffff" stroke-width="1"'
    if look.marker == "square":
        return f'<rect x="{x - 4.5:.2f}" y="{y - 4.5:.2f}" width="9" height="9" {paint}/>'
    if look.marker == "triangle":
        return (
            f'<path d="M{x:.2f},{y - 6:.2f} L{x + 5.5:.2f},{y + 4:.2f} '
            f'L{x - 5.5:.2f},{y + 4:.2f} Z" {paint}/>'
        )
    if look.marker == "diamond":
        return (
            f'<path d="M{x:.2f},{y - 6:.2f} L{x + 6:.2f},{y:.2f} L{x:.2f},{y + 6:.2f} '
            f'L{x - 6:.2f},{y:.2f} Z" {paint}/>'
        )
    return f'<circle cx="{x:.2f}" cy="{y}" r="5" {paint}/>'


def legend_entry(
    frame: Frame, look: SeriesStyle, index: int, label: str, *, line: bool, fill: str = ""
) -> str:
    """One legend row: a line with its marker (or a bar swatch) and the arm's name."""
    y = frame.legend_y + 15 * index
    x = frame.left
    if line:
        sample = (
            f'<line x1="{x}" y1="{y}" x2="{x + 28}" y2="{y}" stroke="{look.colour}" '
            f'stroke-width="2"{dash_attribute(look)}/>{marker(look, x + 14, y)}'
        )
    else:
        sample = (
            f'<rect x="{x + 4}" y="{y - 6}" width="20" height="12" fill="{fill}" '
            f'stroke="{look.colour}" stroke-width="1.5"/>'
        )
    return (
        f'<g class="legend series-{index}">{sample}<text x="{x + 36}" y="{y + 4}" '
        f'font-size="12" fill="{INK}">{escape(label)}</text></g>'
    )


def empty_notice(frame: Frame, text: str) -> str:
    """A sentence across a plot that has nothing to show."""
    middle = (frame.top + frame.height - frame.bottom) / 2
    centre = (frame.left + frame.width - frame.right) / 2
    return (
        f'<text class="plot-empty" x="{centre}" y="{middle}" text-anchor="middle" '
        f'font-size="13" fill="#4a5561">{escape(text)}</text>'
    )
