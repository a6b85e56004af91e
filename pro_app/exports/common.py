"""Variables every patient × time point export starts with, and their values for a record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask_babel import get_locale

from pro_app.exports.source import AssessmentRecord
from pro_app.exports.variables import Label, Variable, VarType, coded
from pro_app.i18n import _l
from pro_app.instruments import Instrument
from pro_app.models import AssessmentStatus, Mode
from pro_app.services.definitions import instrument_registry, trial_schedule


@dataclass(frozen=True)
class Localized:
    """A label given in the schedule file per locale; str() picks the current locale."""

    labels: Mapping[str, str]

    def __str__(self) -> str:
        locale = str(get_locale() or "it")
        return self.labels.get(locale) or self.labels.get("it") or next(iter(self.labels.values()))


STATUS_LABELS: dict[str, Label] = {
    AssessmentStatus.SCHEDULED: _l("scheduled (window not open yet)"),
    AssessmentStatus.OPEN: _l("open, not started"),
    AssessmentStatus.IN_PROGRESS: _l("started, not submitted"),
    AssessmentStatus.COMPLETED: _l("completed"),
    AssessmentStatus.MISSED: _l("missed (window closed)"),
    AssessmentStatus.NOT_DONE: _l("not done (recorded by staff, with reason)"),
}
MODE_LABELS: dict[str, Label] = {
    Mode.WEB: _l("patient's own device (web link)"),
    Mode.TABLET: _l("clinic tablet"),
    Mode.PAPER: _l("paper form typed in by staff"),
}
TIMING_LABELS: dict[str, Label] = {
    "in_window": _l("within the window"),
    "early": _l("before the window opened (paper)"),
    "late": _l("after the window closed"),
}
NOT_COMPLETED = _l("empty when the questionnaire was not completed (see assessment_status)")


def arm_codes() -> list[tuple[str, Label]]:
    return [(arm.code, Localized(arm.labels)) for arm in trial_schedule().arms]


def timepoint_codes() -> list[tuple[str, Label]]:
    return [(tp.code, Localized(tp.labels)) for tp in trial_schedule().timepoints]


def instrument_codes() -> list[tuple[str, Label]]:
    return [(code, inst.name) for code, inst in instrument_registry().instruments.items()]


def patient_variables() -> tuple[Variable, ...]:
    """Who the row is about: the pseudonym and the randomization, never a contact detail."""
    return (
        Variable("study_code", _l("Patient study code (pseudonym)")),
        Variable("site", _l("Site code")),
        coded("arm", _l("Randomized arm"), arm_codes()),
        Variable("randomized_on", _l("Randomization date"), VarType.DATE),
    )


def assessment_variables() -> tuple[Variable, ...]:
    """The time point and how (and when) it was completed."""
    return (
        coded("timepoint", _l("Time point"), timepoint_codes()),
        Variable("target_day", _l("Target day from randomization"), VarType.INTEGER),
        Variable("target_on", _l("Target date"), VarType.DATE),
        coded("assessment_status", _l("Status of the time point"), STATUS_LABELS.items()),
        Variable("completed_at", _l("Submitted at (UTC)"), VarType.DATETIME, missing=NOT_COMPLETED),
        Variable(
            "completed_on",
            _l("Date filled in (local; the paper form's date for paper)"),
            VarType.DATE,
            missing=NOT_COMPLETED,
        ),
        Variable(
            "days_from_randomization",
            _l("Days from randomization to the date filled in"),
            VarType.INTEGER,
            missing=NOT_COMPLETED,
        ),
        coded(
            "timing",
            _l("Filled in within the window or late"),
            TIMING_LABELS.items(),
            NOT_COMPLETED,
        ),
        coded("mode", _l("Mode of administration"), MODE_LABELS.items(), NOT_COMPLETED),
    )


def patient_values(record: AssessmentRecord) -> tuple[Any, ...]:
    return (record.study_code, record.site, record.arm, record.randomized_on)


def assessment_values(record: AssessmentRecord) -> tuple[Any, ...]:
    completed = record.is_completed
    return (
        record.timepoint,
        record.target_day,
        record.target_on,
        record.status,
        record.completed_at if completed else None,
        record.completed_on if completed else None,
        record.days_from_randomization if completed else None,
        str(record.timing) if completed and record.timing else None,
        record.mode if completed else None,
    )


def instruments_in(filters_instrument: str | None, timepoint: str) -> tuple[Instrument, ...]:
    """The instruments of a time point, narrowed to one if the filter asks."""
    registry = instrument_registry()
    codes = trial_schedule().timepoint(timepoint).instruments
    return tuple(registry.get(code) for code in codes if filters_instrument in (None, "", code))


def wide_prefix(instrument_code: str) -> str:
    """qlq_c30 → QLQC30: the prefix of wide column names (QLQC30_PF2)."""
    return instrument_code.replace("_", "").replace("-", "").upper()
