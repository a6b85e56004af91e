"""The analyst plots with their words: labels in the user's language, tooltips, number tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flask_babel import format_decimal, format_percent, get_locale
from flask_babel import gettext as _
from markupsafe import Markup

from pro_app.analysis.compliance import ComplianceRow
from pro_app.analysis.stats import MeanCI
from pro_app.analyst.plot_data import Axes, ScaleSummary
from pro_app.analyst.plot_layout import PlotText
from pro_app.analyst.plots import (
    Bar,
    BarSeries,
    MeanPoint,
    MeanSeries,
    bars_svg,
    mean_ci_svg,
)
from pro_app.exports.labels import ScaleLabel
from pro_app.services.definitions import trial_schedule

COMPLETION_ID = "plot-completion"


@dataclass(frozen=True)
class Figure:
    """One plot: the SVG and, as its text alternative, the numbers by time point and arm."""

    chart_id: str
    title: str
    svg: Markup
    headings: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]  # time point, arm, then the numbers as text


def locale() -> str:
    return str(get_locale() or "it")


def timepoint_label(code: str) -> str:
    return trial_schedule().timepoint(code).label(locale())


def arm_label(code: str | None) -> str:
    return _("All arms") if code is None else trial_schedule().arm(code).label(locale())


def number(value: float | None) -> str:
    return "–" if value is None else format_decimal(value, "0.0")


def rate_text(rate: float | None) -> str:
    """A compliance rate as "85.0 %" in the user's locale; "–" when nothing is expected yet."""
    return "–" if rate is None else format_percent(rate / 100, "0.0%")


def scale_title(summary: ScaleSummary) -> str:
    return f"{ScaleLabel(summary.instrument.code, summary.scale)} ({summary.scale})"


def _mean_tooltip(arm: str, timepoint: str, stats: MeanCI) -> str:
    if stats.low is None or stats.high is None:
        return _(
            "%(arm)s, %(timepoint)s: mean %(mean)s, no confidence interval (n = %(n)d)",
            arm=arm,
            timepoint=timepoint,
            mean=number(stats.mean),
            n=stats.n,
        )
    return _(
        "%(arm)s, %(timepoint)s: mean %(mean)s (95%% CI %(low)s to %(high)s), n = %(n)d",
        arm=arm,
        timepoint=timepoint,
        mean=number(stats.mean),
        low=number(stats.low),
        high=number(stats.high),
        n=stats.n,
    )


def scale_figure(summary: ScaleSummary, axes: Axes) -> Figure:
    """Mean with 95% CI by arm over the time points, for one scale."""
    instrument = summary.instrument
    chart_id = f"plot-{instrument.code}-{summary.scale}"
    labels = [timepoint_label(tp) for tp in axes.timepoints]
    series = []
    rows = []
    for arm in axes.arms:
        name = arm_label(arm)
        points = []
        for tp, tp_label in zip(axes.timepoints, labels, strict=True):
            stats = summary.cell(arm, tp)
            tooltip = _mean_tooltip(name, tp_label, stats) if stats.n else ""
            points.append(MeanPoint(stats.mean, stats.low, stats.high, tooltip))
        series.append(MeanSeries(name, points))
    for tp, tp_label in zip(axes.timepoints, labels, strict=True):
        for arm in axes.arms:
            stats = summary.cell(arm, tp)
            interval = (
                f"{number(stats.low)} – {number(stats.high)}" if stats.low is not None else "–"
            )
            rows.append((tp_label, arm_label(arm), str(stats.n), number(stats.mean), interval))
    text = PlotText(
        title=scale_title(summary),
        y_label=_("Mean score (95% CI)"),
        x_labels=labels,
        note="" if instrument.verified else _("Provisional scoring (scale map not verified)"),
        empty=_("No completed questionnaires"),
    )
    headings = (_("Time point"), _("Arm"), "n", _("Mean"), _("95% CI"))
    return Figure(chart_id, text.title, mean_ci_svg(series, text, chart_id), headings, rows)


def completion_figure(compliance: list[ComplianceRow], axes: Axes) -> Figure:
    """Grouped bars of the compliance rate by time point and arm."""
    found = {(row.timepoint, row.arm): row for row in compliance}
    labels = [timepoint_label(tp) for tp in axes.timepoints]
    series = []
    for arm in axes.arms:
        name = arm_label(arm)
        bars = []
        for tp, tp_label in zip(axes.timepoints, labels, strict=True):
            row = found.get((tp, arm)) or ComplianceRow(tp, arm)
            bars.append(Bar(row.rate, _completion_tooltip(name, tp_label, row)))
        series.append(BarSeries(name, bars))
    rows = [
        (
            timepoint_label(row.timepoint),
            arm_label(row.arm),
            str(row.received),
            str(row.expected),
            rate_text(row.rate),
        )
        for row in compliance
    ]
    text = PlotText(
        title=_("Completion by time point and arm"),
        y_label=_("Received of expected (%)"),
        x_labels=labels,
        empty=_("No questionnaire is due yet"),
    )
    headings = (_("Time point"), _("Arm"), _("Received"), _("Expected"), _("Rate"))
    svg = bars_svg(series, text, COMPLETION_ID)
    return Figure(COMPLETION_ID, text.title, svg, headings, rows)


def _completion_tooltip(arm: str, timepoint: str, row: ComplianceRow) -> str:
    if row.rate is None:
        return _("%(arm)s, %(timepoint)s: nothing expected yet", arm=arm, timepoint=timepoint)
    return _(
        "%(arm)s, %(timepoint)s: %(rate)s (%(received)d received of %(expected)d expected)",
        arm=arm,
        timepoint=timepoint,
        rate=rate_text(row.rate),
        received=row.received,
        expected=row.expected,
    )
