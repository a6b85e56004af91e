"""Correcting a submitted answer: investigators only, with a reason; the replaced value stays."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from flask_babel import LazyString

from pro_app.extensions import db
from pro_app.i18n import _l
from pro_app.models import (
    Answer,
    AnswerCorrection,
    Assessment,
    AssessmentStatus,
    Role,
    StaffUser,
)
from pro_app.services import audit
from pro_app.services.definitions import instrument_registry, trial_schedule
from pro_app.services.scores import store_scores

REASON_MAX_LENGTH = 1000

CorrectionKey = tuple[int, str, int]  # (assessment id, instrument, item)


class CorrectionError(ValueError):
    """A correction that cannot be made; field names the form field concerned, if any."""

    def __init__(self, message: str | LazyString, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def is_correctable(assessment: Assessment) -> bool:
    """Only submitted answers are corrected; anything else is still being collected."""
    return assessment.status == AssessmentStatus.COMPLETED


def correct_answer(
    assessment: Assessment,
    instrument: str,
    item: int,
    new_value: int | None,
    reason: str,
    *,
    staff_user: StaffUser,
    now: datetime,
) -> AnswerCorrection:
    """Change one answer (None = no answer), keep the replaced value, rescore, audit."""
    if not staff_user.has_role(Role.INVESTIGATOR):
        raise CorrectionError(_l("Only an investigator can correct an answer."))
    if not is_correctable(assessment):
        raise CorrectionError(_l("Only a completed questionnaire can be corrected."))
    _check_item(assessment, instrument, item, new_value)
    reason = reason.strip()
    if not reason or len(reason) > REASON_MAX_LENGTH:
        raise CorrectionError(_l("Give the reason for the correction."), field="reason")
    answer = db.session.scalar(
        db.select(Answer)
        .where(
            Answer.assessment_id == assessment.id,
            Answer.instrument == instrument,
            Answer.item == item,
        )
        .with_for_update()  # two simultaneous corrections must not both read the same "before"
    )
    original = answer.value if answer is not None else None
    original_status = _answer_status(answer)
    if answer is not None and original == new_value:
        raise CorrectionError(
            _l("The new value is the same as the current one."), field="new_value"
        )
    scores_before = _score_values(assessment)
    correction = AnswerCorrection(
        assessment_id=assessment.id,
        instrument=instrument,
        item=item,
        original_value=original,
        new_value=new_value,
        reason=reason,
        corrected_by_id=staff_user.id,
        corrected_at=now,
    )
    db.session.add(correction)
    if answer is None:  # the item was never shown; the correction supplies it
        answer = Answer(assessment=assessment, instrument=instrument, item=item, answered_at=now)
        db.session.add(answer)
    answer.value = new_value
    db.session.flush()
    db.session.expire(assessment, ["answers"])
    store_scores(assessment, now)
    scores_after = _score_values(assessment)
    changed = sorted(key for key in scores_after if scores_after[key] != scores_before.get(key))
    audit.record(
        audit.Actor.staff(staff_user.id),
        "answer.correct",
        assessment,
        site_id=assessment.patient.site_id,
        before={
            "instrument": instrument,
            "item": item,
            "value": original,
            "status": original_status,
            "scores": {key: scores_before.get(key) for key in changed},
        },
        after={
            "instrument": instrument,
            "item": item,
            "value": new_value,
            "correction_id": correction.id,
            "scores": {key: scores_after[key] for key in changed},
        },
        reason=reason,
    )
    return correction


def _check_item(assessment: Assessment, instrument: str, item: int, value: int | None) -> None:
    registry = instrument_registry()
    codes = trial_schedule().timepoint(assessment.timepoint).instruments
    if instrument not in codes or not registry.get(instrument).has_item(item):
        raise CorrectionError(_l("This question is not part of the questionnaire."), field="item")
    scale = registry.get(instrument).item(item).response_scale
    if value is not None and not scale.allows(value):
        raise CorrectionError(
            _l("The value is not one of the choices for this question."), field="new_value"
        )


def _answer_status(answer: Answer | None) -> str:
    # The export's vocabulary: a row with no value was skipped, no row was never shown.
    if answer is None:
        return "not_shown"
    return "skipped" if answer.value is None else "answered"


def _score_values(assessment: Assessment) -> dict[str, float | None]:
    return {f"{score.instrument}.{score.scale}": score.value for score in assessment.scores}


def corrections_for(assessment_ids: Iterable[int]) -> dict[CorrectionKey, list[AnswerCorrection]]:
    """(assessment, instrument, item) → its corrections, oldest first (for exports and pages)."""
    ids = sorted(set(assessment_ids))
    found: dict[CorrectionKey, list[AnswerCorrection]] = defaultdict(list)
    # Chunks keep the IN list within every database's parameter limit.
    for start in range(0, len(ids), 500):
        rows = db.session.scalars(
            db.select(AnswerCorrection)
            .where(AnswerCorrection.assessment_id.in_(ids[start : start + 500]))
            .order_by(AnswerCorrection.corrected_at, AnswerCorrection.id)
        )
        for row in rows:
            found[(row.assessment_id, row.instrument, row.item)].append(row)
    return dict(found)
