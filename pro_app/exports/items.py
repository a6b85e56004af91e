"""The item-level export: every item of every assessment, with an explicit status and any
correction (the value as submitted, the current value, and why it changed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pro_app.exports.common import (
    assessment_values,
    assessment_variables,
    instrument_codes,
    instruments_in,
    patient_values,
    patient_variables,
)
from pro_app.exports.labels import OptionLabel
from pro_app.exports.source import AssessmentRecord, ExportFilter, answers_for, assessment_chunks
from pro_app.exports.variables import Dataset, Label, Variable, VarType, coded
from pro_app.i18n import _l
from pro_app.models import AssessmentStatus, StaffUser
from pro_app.services.corrections import corrections_for
from pro_app.services.definitions import instrument_registry

ITEM_STATUS = {
    "answered": _l("answered"),
    "skipped": _l("shown and deliberately left blank"),
    "not_shown": _l("never shown (the questionnaire was submitted without it)"),
    "missed": _l("the whole time point was missed or not done"),
    "pending": _l("the time point is still open or not yet due"),
}
NOT_ANSWERED = _l("empty unless status is 'answered'")
NOT_CORRECTED = _l("empty when the answer was never corrected")


def _response_values() -> dict[Any, Label]:
    """Every response scale's options, keyed "<instrument> <scale> <value>" for the codebook."""
    values: dict[Any, Label] = {}
    for code, instrument in instrument_registry().instruments.items():
        for scale in instrument.response_scales.values():
            for value in range(scale.min, scale.max + 1):
                values[f"{code} {scale.code} {value}"] = OptionLabel(code, scale.code, value)
    return values


def item_status(record: AssessmentRecord, present: bool, value: int | None) -> str:
    if present:
        return "answered" if value is not None else "skipped"
    if record.status == AssessmentStatus.COMPLETED:
        return "not_shown"
    if record.status in (AssessmentStatus.MISSED, AssessmentStatus.NOT_DONE):
        return "missed"
    return "pending"


def items_export(user: StaffUser | None, filters: ExportFilter) -> Dataset:
    """One row per patient × time point × instrument × item."""
    variables = (
        *patient_variables(),
        *assessment_variables(),
        coded("instrument", _l("Questionnaire"), instrument_codes()),
        Variable(
            "item", _l("Item number (EORTC numbering; module items follow 30)"), VarType.INTEGER
        ),
        Variable(
            "value",
            _l("Answer (response code; current value after any correction)"),
            VarType.INTEGER,
            _response_values(),
            NOT_ANSWERED,
        ),
        coded("status", _l("Status of the item"), ITEM_STATUS.items()),
        Variable(
            "original_value",
            _l("Answer as submitted, before corrections (empty if it was blank)"),
            VarType.INTEGER,
            missing=NOT_CORRECTED,
        ),
        Variable("correction_count", _l("Number of corrections of this answer"), VarType.INTEGER),
        Variable(
            "correction_reason", _l("Reason given for the latest correction"), missing=NOT_CORRECTED
        ),
        Variable(
            "corrected_at",
            _l("Latest correction at (UTC)"),
            VarType.DATETIME,
            missing=NOT_CORRECTED,
        ),
    )
    return Dataset("items", variables, _rows(user, filters))


def _rows(user: StaffUser | None, filters: ExportFilter) -> Iterator[tuple[Any, ...]]:
    for chunk in assessment_chunks(user, filters):
        ids = [record.assessment_id for record in chunk]
        answers = answers_for(ids)
        corrections = corrections_for(ids)
        for record in chunk:
            head = (*patient_values(record), *assessment_values(record))
            stored = answers.get(record.assessment_id, {})
            for instrument in instruments_in(filters.instrument, record.timepoint):
                for number in instrument.item_numbers:
                    key = (instrument.code, number)
                    present = key in stored
                    value = stored.get(key)
                    changes = corrections.get((record.assessment_id, instrument.code, number), [])
                    first, last = (changes[0], changes[-1]) if changes else (None, None)
                    yield (
                        *head,
                        instrument.code,
                        number,
                        value,
                        item_status(record, present, value),
                        first.original_value if first is not None else None,
                        len(changes),
                        last.reason if last is not None else None,
                        last.corrected_at if last is not None else None,
                    )
