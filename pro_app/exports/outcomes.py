"""The compliance table and time-to-deterioration data, as exports."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from flask import current_app

from pro_app.analysis.compliance import ComplianceRow, compliance_table
from pro_app.analysis.deterioration import Observation, Outcome, time_to_deterioration
from pro_app.exports.common import arm_codes, instrument_codes, timepoint_codes
from pro_app.exports.labels import higher_is_worse, scale_kind
from pro_app.exports.scores import PROVISIONAL_NOTE, _scale_codes
from pro_app.exports.source import (
    AssessmentRecord,
    ExportFilter,
    StoredScore,
    assessment_chunks,
    scores_for,
)
from pro_app.exports.variables import Dataset, Variable, VarType, coded, flag
from pro_app.i18n import _l
from pro_app.models import StaffUser
from pro_app.services.definitions import instrument_registry, trial_schedule

ALL_ARMS = "all"


def compliance_rows(
    user: StaffUser | None, filters: ExportFilter, as_of: date
) -> list[ComplianceRow]:
    """The live table: per time point, each arm then all arms together."""
    schedule = trial_schedule()
    timepoints = [tp.code for tp in schedule.timepoints if filters.timepoint in (None, "", tp.code)]
    arms = [arm.code for arm in schedule.arms if filters.arm in (None, "", arm.code)]
    facts = (record.facts() for chunk in assessment_chunks(user, filters) for record in chunk)
    return compliance_table(facts, timepoints, arms, as_of)


def compliance_export(user: StaffUser | None, filters: ExportFilter, as_of: date) -> Dataset:
    """The CONSORT-PRO table as rows: time point × arm, with 'all' for both arms."""
    count = VarType.INTEGER
    variables = (
        coded("timepoint", _l("Time point"), timepoint_codes()),
        coded(
            "arm",
            _l("Randomized arm ('all' = both arms)"),
            [*arm_codes(), (ALL_ARMS, _l("all arms"))],
        ),
        Variable("as_of", _l("Counted on (windows closed before this date are due)"), VarType.DATE),
        Variable("expected", _l("Expected: window closed (or completed), patient on study"), count),
        Variable("received", _l("Received: completed questionnaires"), count),
        Variable("on_time", _l("Received within the window"), count),
        Variable("early", _l("Received before the window (paper)"), count),
        Variable("late", _l("Received after the window closed"), count),
        Variable("missed", _l("Expected but not received"), count),
        Variable("pending", _l("Window still open or not yet opened"), count),
        Variable("off_study", _l("Not expected: withdrawn or died by the window's end"), count),
        Variable(
            "compliance_rate",
            _l("Compliance: received / expected, percent"),
            VarType.NUMBER,
            missing=_l("empty when nothing is expected yet"),
        ),
    )

    def rows() -> Iterator[tuple[Any, ...]]:  # lazy: the codebook only reads the variables
        for row in compliance_rows(user, filters, as_of):
            yield (row.timepoint, row.arm or ALL_ARMS, as_of, *row.counts, row.rate)

    return Dataset("compliance", variables, rows())


def deterioration_threshold() -> float:
    return float(current_app.config["DETERIORATION_THRESHOLD"])


def deterioration_export(user: StaffUser | None, filters: ExportFilter) -> Dataset:
    """Per patient and scale: baseline, first worsening by the threshold, days, event flag."""
    threshold = deterioration_threshold()
    no_baseline = _l("empty when there is no baseline score (outcome 'no_baseline')")
    variables = (
        Variable("study_code", _l("Patient study code (pseudonym)")),
        Variable("site", _l("Site code")),
        coded("arm", _l("Randomized arm"), arm_codes()),
        Variable("randomized_on", _l("Randomization date"), VarType.DATE),
        coded("instrument", _l("Questionnaire"), instrument_codes()),
        coded("scale", _l("Scale or single item"), _scale_codes()),
        coded(
            "scale_kind",
            _l("Kind of scale (direction of a worse score)"),
            [
                ("functional", _l("functional: a fall is a worsening")),
                ("global", _l("global health status: a fall is a worsening")),
                ("symptom", _l("symptom: a rise is a worsening")),
                ("summary", _l("summary score: a fall is a worsening")),
            ],
        ),
        Variable(
            "threshold", _l("Worsening that counts as deterioration (points)"), VarType.NUMBER
        ),
        Variable("baseline_score", _l("Baseline score"), VarType.NUMBER, missing=no_baseline),
        coded(
            "outcome",
            _l("Deteriorated, censored, or not evaluable"),
            [
                (Outcome.EVENT, _l("deteriorated by at least the threshold")),
                (Outcome.CENSORED, _l("no deterioration up to the last scored time point")),
                (Outcome.NO_BASELINE, _l("no baseline score: not evaluable")),
            ],
        ),
        flag(
            "event",
            _l("Event indicator for survival analysis"),
            _l("deteriorated"),
            _l("censored"),
            no_baseline,
        ),
        Variable(
            "days",
            _l("Days from randomization to deterioration or censoring"),
            VarType.INTEGER,
            missing=no_baseline,
        ),
        coded(
            "event_timepoint",
            _l("Time point of deterioration or censoring"),
            timepoint_codes(),
            no_baseline,
        ),
        Variable(
            "event_score",
            _l("Score at deterioration or censoring"),
            VarType.NUMBER,
            missing=no_baseline,
        ),
        Variable(
            "change_from_baseline",
            _l("Score minus baseline at that time point"),
            VarType.NUMBER,
            missing=no_baseline,
        ),
        Variable("follow_up_count", _l("Scored time points after baseline"), VarType.INTEGER),
        flag(
            "scoring_verified",
            _l("Scale map verified against the scoring manual"),
            _l("verified"),
            _l("provisional"),
        ),
    )
    return Dataset(
        "deterioration",
        variables,
        _deterioration_rows(user, filters, threshold),
        note=PROVISIONAL_NOTE,
    )


def _patients(
    user: StaffUser | None, filters: ExportFilter
) -> Iterator[tuple[list[AssessmentRecord], dict[int, dict[tuple[str, str], StoredScore]]]]:
    """Each patient's records with their scores (records arrive sorted by study code)."""
    records: list[AssessmentRecord] = []
    scores: dict[int, dict[tuple[str, str], StoredScore]] = {}
    for chunk in assessment_chunks(user, filters, all_timepoints=True):
        scores.update(scores_for([r.assessment_id for r in chunk if r.is_completed]))
        for record in chunk:
            if records and record.study_code != records[0].study_code:
                yield records, scores
                for done in records:  # keep memory flat: forget the patient just written
                    scores.pop(done.assessment_id, None)
                records = []
            records.append(record)
    if records:
        yield records, scores


def _deterioration_rows(
    user: StaffUser | None, filters: ExportFilter, threshold: float
) -> Iterator[tuple[Any, ...]]:
    registry = instrument_registry()
    baseline_code = trial_schedule().timepoints[0].code
    codes = [code for code in registry.instruments if filters.instrument in (None, "", code)]
    for records, scores in _patients(user, filters):
        first = records[0]
        for code in codes:
            instrument = registry.get(code)
            for scale in instrument.scale_codes:
                observations: dict[str, Observation] = {}
                for record in records:
                    score = scores.get(record.assessment_id, {}).get((code, scale))
                    day = record.days_from_randomization
                    if record.is_completed and score is not None and score.value is not None:
                        observations[record.timepoint] = Observation(
                            record.timepoint, day if day is not None else 0, score.value
                        )
                baseline = observations.pop(baseline_code, None)
                result = time_to_deterioration(
                    baseline,
                    list(observations.values()),
                    threshold,
                    higher_is_worse=higher_is_worse(instrument, scale),
                )
                yield (
                    first.study_code,
                    first.site,
                    first.arm,
                    first.randomized_on,
                    code,
                    scale,
                    scale_kind(instrument, scale),
                    threshold,
                    result.baseline,
                    str(result.outcome),
                    result.event_flag,
                    result.day,
                    result.timepoint,
                    result.score,
                    result.change,
                    result.follow_up_count,
                    int(instrument.verified),
                )
