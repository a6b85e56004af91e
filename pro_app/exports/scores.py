"""The scores exports: long (one row per scale) and wide (one column per scale)."""

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
    wide_prefix,
)
from pro_app.exports.labels import ScaleLabel, items_in, scale_kind
from pro_app.exports.source import (
    AssessmentRecord,
    ExportFilter,
    StoredScore,
    assessment_chunks,
    scores_for,
)
from pro_app.exports.variables import Dataset, Variable, VarType, coded, flag
from pro_app.i18n import _l
from pro_app.instruments import scoring_version
from pro_app.models import StaffUser
from pro_app.services.definitions import instrument_registry, trial_schedule

SCORE_STATUS = {
    "scored": _l("scored"),
    "insufficient_items": _l("too few items answered for the scoring rule (half rule)"),
    "not_completed": _l("questionnaire not completed"),
}
SCORE_REFERENCE = "EORTC QLQ-C30 Scoring Manual, 3rd ed. (Fayers et al., 2001); SCORING.md"
PROVISIONAL_NOTE = _l(
    "QLQ-GI.NET21 scores use a provisional scale map (scoring_verified = 0) until it is "
    "confirmed against the licensed EORTC scoring sheet."
)
SCORE_MISSING = _l("empty when score_status is not 'scored'; never 0")


def _scale_codes() -> list[tuple[str, Any]]:
    codes: dict[str, Any] = {}
    for code, instrument in instrument_registry().instruments.items():
        for scale in instrument.scale_codes:
            codes.setdefault(scale, ScaleLabel(code, scale))
    return list(codes.items())


def score_status(record: AssessmentRecord, score: StoredScore | None) -> str:
    if not record.is_completed or score is None:
        return "not_completed"
    return "scored" if score.value is not None else "insufficient_items"


def scores_long(user: StaffUser | None, filters: ExportFilter) -> Dataset:
    """One row per patient × time point × instrument × scale."""
    variables = (
        *patient_variables(),
        *assessment_variables(),
        coded("instrument", _l("Questionnaire"), instrument_codes()),
        coded("scale", _l("Scale or single item"), _scale_codes()),
        coded(
            "scale_kind",
            _l("Kind of scale (direction of a worse score)"),
            [
                ("functional", _l("functional: higher is better")),
                ("global", _l("global health status: higher is better")),
                ("symptom", _l("symptom: higher is worse")),
                ("summary", _l("summary score: higher is better")),
            ],
        ),
        Variable(
            "score",
            _l("Score 0-100 (unrounded)"),
            VarType.NUMBER,
            missing=SCORE_MISSING,
            reference=SCORE_REFERENCE,
        ),
        coded("score_status", _l("Why the score is or is not there"), SCORE_STATUS.items()),
        Variable("items_answered", _l("Items answered in the scale"), VarType.INTEGER),
        Variable("items_in_scale", _l("Items in the scale"), VarType.INTEGER),
        flag(
            "scoring_verified",
            _l("Scale map verified against the scoring manual"),
            _l("verified"),
            _l("provisional"),
        ),
        Variable(
            "scoring_version", _l("Scoring definition and version"), reference=SCORE_REFERENCE
        ),
        Variable("text_pack", _l("Wording the patient saw (text pack and version)")),
    )
    return Dataset("scores", variables, _long_rows(user, filters), note=PROVISIONAL_NOTE)


def _long_rows(user: StaffUser | None, filters: ExportFilter) -> Iterator[tuple[Any, ...]]:
    # What does not depend on the patient is worked out once per instrument, not per row.
    registry = instrument_registry()
    static = {
        code: [
            (scale, scale_kind(instrument, scale), items_in(instrument, scale))
            for scale in instrument.scale_codes
        ]
        for code, instrument in registry.instruments.items()
    }
    versions = {code: scoring_version(inst) for code, inst in registry.instruments.items()}
    for chunk in assessment_chunks(user, filters):
        scores = scores_for([record.assessment_id for record in chunk if record.is_completed])
        for record in chunk:
            head = (*patient_values(record), *assessment_values(record))
            stored = scores.get(record.assessment_id, {})
            for instrument in instruments_in(filters.instrument, record.timepoint):
                code, verified = instrument.code, int(instrument.verified)
                pack = record.text_pack(code)
                for scale, kind, in_scale in static[code]:
                    score = stored.get((code, scale))
                    status = score_status(record, score)
                    if score is None or status == "not_completed":
                        yield (*head, code, scale, kind, None, status, 0, in_scale,
                               verified, versions[code], pack)  # fmt: skip
                        continue
                    yield (*head, code, scale, kind, score.value, status, score.items_answered,
                           in_scale, verified, score.scoring_version, pack)  # fmt: skip


def wide_columns(filters: ExportFilter) -> list[tuple[str, str, str]]:
    """(column name, instrument, scale) for every scale of the instruments in the export."""
    registry = instrument_registry()
    codes: list[str] = []
    for timepoint in trial_schedule().timepoints:
        for code in timepoint.instruments:
            if code not in codes and filters.instrument in (None, "", code):
                codes.append(code)
    return [
        (f"{wide_prefix(code)}_{scale}", code, scale)
        for code in codes
        for scale in registry.get(code).scale_codes
    ]


def scores_wide(user: StaffUser | None, filters: ExportFilter) -> Dataset:
    """One row per patient × time point, one column per scale (QLQC30_PF2, ...)."""
    columns = wide_columns(filters)
    registry = instrument_registry()
    score_variables = tuple(
        Variable(
            name,
            ScaleLabel(code, scale),
            VarType.NUMBER,
            missing=_l(
                "empty when the scale could not be scored or the time point was not "
                "completed (see assessment_status)"
            ),
            reference=scoring_version(registry.get(code)),
        )
        for name, code, scale in columns
    )
    variables = (*patient_variables(), *assessment_variables(), *score_variables)
    return Dataset(
        "scores-wide", variables, _wide_rows(user, filters, columns), note=PROVISIONAL_NOTE
    )


def _wide_rows(
    user: StaffUser | None, filters: ExportFilter, columns: list[tuple[str, str, str]]
) -> Iterator[tuple[Any, ...]]:
    for chunk in assessment_chunks(user, filters):
        scores = scores_for([record.assessment_id for record in chunk if record.is_completed])
        for record in chunk:
            stored = scores.get(record.assessment_id, {})
            values = []
            for _name, code, scale in columns:
                score = stored.get((code, scale))
                values.append(score.value if score is not None and record.is_completed else None)
            yield (*patient_values(record), *assessment_values(record), *values)
