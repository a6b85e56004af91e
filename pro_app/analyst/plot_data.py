"""The numbers behind the analyst plots: mean score with 95% CI per instrument × scale × arm ×
time point, from the stored scores of completed assessments in the user's scope."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

from pro_app.analysis.stats import MeanCI, mean_ci
from pro_app.exports.source import ExportFilter, assessment_chunks, scores_for
from pro_app.instruments import Instrument
from pro_app.models import StaffUser
from pro_app.services.definitions import instrument_registry, trial_schedule


@dataclass(frozen=True)
class Axes:
    """The arms and time points the filters leave, in schedule order."""

    arms: tuple[str, ...]
    timepoints: tuple[str, ...]


@dataclass(frozen=True)
class ScaleSummary:
    """One scale: (arm, time point) → n, mean and 95% CI."""

    instrument: Instrument
    scale: str
    cells: dict[tuple[str, str], MeanCI]

    def cell(self, arm: str, timepoint: str) -> MeanCI:
        return self.cells.get((arm, timepoint), MeanCI(0, None, None, None))


def plot_axes(filters: ExportFilter) -> Axes:
    schedule = trial_schedule()
    return Axes(
        tuple(arm.code for arm in schedule.arms if filters.arm in (None, "", arm.code)),
        tuple(tp.code for tp in schedule.timepoints if filters.timepoint in (None, "", tp.code)),
    )


def plotted_instruments(filters: ExportFilter) -> list[Instrument]:
    """Instruments in the order the schedule first asks for them, narrowed by the filter."""
    codes: list[str] = []
    for timepoint in trial_schedule().timepoints:
        codes += [code for code in timepoint.instruments if code not in codes]
    registry = instrument_registry()
    return [registry.get(code) for code in codes if filters.instrument in (None, "", code)]


def scale_summaries(user: StaffUser | None, filters: ExportFilter) -> list[ScaleSummary]:
    """Every scale of every (filtered) instrument, summarised by arm and time point."""
    instruments = plotted_instruments(filters)
    wanted = {instrument.code for instrument in instruments}
    values: dict[tuple[str, str, str, str], list[float]] = defaultdict(list)
    for chunk in assessment_chunks(user, filters):
        completed = [record for record in chunk if record.is_completed]
        scores = scores_for([record.assessment_id for record in completed])
        for record in completed:
            for (instrument, scale), score in scores.get(record.assessment_id, {}).items():
                if instrument in wanted and score.value is not None:
                    values[(instrument, scale, record.arm, record.timepoint)].append(score.value)
    axes = plot_axes(filters)
    return [
        ScaleSummary(
            instrument,
            scale,
            {
                (arm, tp): mean_ci(values[(instrument.code, scale, arm, tp)])
                for arm in axes.arms
                for tp in axes.timepoints
                if (instrument.code, scale, arm, tp) in values
            },
        )
        for instrument in instruments
        for scale in instrument.scale_codes
    ]


def scale_summary(
    user: StaffUser | None, filters: ExportFilter, instrument: str, scale: str
) -> ScaleSummary | None:
    """One scale's summary; None when the instrument has no such scale."""
    for summary in scale_summaries(user, replace(filters, instrument=instrument)):
        if summary.scale == scale:
            return summary
    return None
