"""Changes of a patient's participation: withdrawal, death, reminders, questionnaires not done."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import LazyString
from sqlalchemy import CursorResult, update

from pro_app.extensions import db
from pro_app.i18n import _l
from pro_app.models import AssessmentStatus, Patient, PatientStatus
from pro_app.models.assessment import ANSWERABLE_STATUSES, Assessment
from pro_app.services import audit
from pro_app.services.outbox import cancel_pending_messages, sync_patient_messages

MAX_REASON_LENGTH = 500  # the reason columns' size

# A questionnaire can be declared not done unless it has been answered (or already declared).
NOT_DONE_ALLOWED_FROM = (*ANSWERABLE_STATUSES, AssessmentStatus.MISSED)


class StatusChangeError(ValueError):
    """A change that cannot be made; the message says why, in the user's language."""

    def __init__(self, message: str | LazyString, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field  # the form field the message belongs to, if any


def withdraw(patient: Patient, on: date, reason: str, now: datetime, actor: audit.Actor) -> None:
    """Stop the patient's participation: no more questionnaires or messages from now on."""
    _end_participation(patient, PatientStatus.WITHDRAWN, on, now, actor, reason=reason.strip())


def record_death(patient: Patient, on: date, now: datetime, actor: audit.Actor) -> None:
    """Record a death: every pending message is cancelled at once."""
    _end_participation(patient, PatientStatus.DECEASED, on, now, actor, reason=None)


def require_followed(patient: Patient) -> None:
    """Refuse a change for a patient who is no longer followed (withdrawn, deceased, completed)."""
    if patient.status != PatientStatus.ACTIVE:
        raise StatusChangeError(_l("This patient is no longer followed."))


def require_reason(reason: str | None, *, required: bool = True) -> str | None:
    """The reason without surrounding blanks; refused when missing (if required) or too long."""
    cleaned = (reason or "").strip()
    if required and not cleaned:
        raise StatusChangeError(_l("Give the reason."), "reason")
    if len(cleaned) > MAX_REASON_LENGTH:
        raise StatusChangeError(
            _l("The reason can be at most %(max)s characters long.", max=MAX_REASON_LENGTH),
            "reason",
        )
    return cleaned or None


def _end_participation(
    patient: Patient,
    status: PatientStatus,
    on: date,
    now: datetime,
    actor: audit.Actor,
    reason: str | None,
) -> None:
    require_followed(patient)
    if on > now.astimezone(ZoneInfo(patient.timezone)).date():
        raise StatusChangeError(_l("The date cannot be in the future."), "on")
    if on < patient.randomized_on:
        raise StatusChangeError(_l("The date cannot be before randomization."), "on")
    if status == PatientStatus.WITHDRAWN and not reason:
        raise StatusChangeError(_l("Give the reason for the withdrawal."), "reason")
    reason = require_reason(reason, required=False)
    before = {"status": patient.status}
    patient.status = status
    if status == PatientStatus.WITHDRAWN:
        patient.withdrawn_on, patient.withdrawal_reason = on, reason
    else:
        patient.died_on = on
    cancelled = cancel_pending_messages(patient, f"patient {status}")
    # Questionnaires still to come are not "missed": they will never be asked.
    open_assessments = db.session.scalars(
        db.select(Assessment).where(
            Assessment.patient_id == patient.id,
            Assessment.status.in_(ANSWERABLE_STATUSES),
        )
    )
    for assessment in open_assessments:
        assessment.status = AssessmentStatus.NOT_DONE
        assessment.not_done_reason = str(status)
    audit.record(
        actor,
        f"patient.{status}",
        patient,
        site_id=patient.site_id,
        before=before,
        after={"status": str(status), "on": on.isoformat(), "messages_cancelled": cancelled},
        reason=reason,
    )


def require_reminders_change(patient: Patient, paused: bool) -> None:
    """Refuse to pause paused reminders or resume active ones (a repeated click, a stale page)."""
    require_followed(patient)
    if patient.is_reminders_paused == paused:
        raise StatusChangeError(
            _l("The reminders are already paused.")
            if paused
            else _l("The reminders are already active.")
        )


def set_reminders_paused(
    patient: Patient, paused: bool, now: datetime, actor: audit.Actor, reason: str | None = None
) -> None:
    """Pause (cancel what is pending) or resume (plan again from now) the patient's reminders."""
    require_reminders_change(patient, paused)
    reason = require_reason(reason, required=False)
    patient.is_reminders_paused = paused
    if paused:
        cancel_pending_messages(patient, "reminders paused")
    else:
        sync_patient_messages(patient, now)
    audit.record(
        actor,
        "patient.reminders_paused" if paused else "patient.reminders_resumed",
        patient,
        site_id=patient.site_id,
        before={"reminders_paused": not paused},
        after={"reminders_paused": paused},
        reason=reason,
    )


def require_may_mark_not_done(assessment: Assessment) -> None:
    """Refuse for a questionnaire that was completed or is already declared not done."""
    if assessment.status == AssessmentStatus.COMPLETED:
        raise StatusChangeError(
            _l("This questionnaire has been completed: it cannot be marked as not done.")
        )
    if assessment.status == AssessmentStatus.NOT_DONE:
        raise StatusChangeError(_l("This questionnaire is already marked as not done."))


def mark_not_done(assessment: Assessment, reason: str, now: datetime, actor: audit.Actor) -> None:
    """Declare that a questionnaire will not be collected, and why; its messages stop."""
    require_may_mark_not_done(assessment)
    cleaned = require_reason(reason)
    before = assessment.status
    # Conditional, like a submission: a patient submitting at this very moment wins.
    changed: CursorResult[Any] = db.session.execute(  # type: ignore[assignment]
        update(Assessment)
        .where(Assessment.id == assessment.id, Assessment.status.in_(NOT_DONE_ALLOWED_FROM))
        .values(status=AssessmentStatus.NOT_DONE, not_done_reason=cleaned)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(assessment)
    if changed.rowcount != 1:
        raise StatusChangeError(_l("This questionnaire has just changed: please check it again."))
    sync_patient_messages(assessment.patient, now)
    audit.record(
        actor,
        "assessment.not_done",
        assessment,
        site_id=assessment.patient.site_id,
        before={"status": str(before)},
        after={"status": str(AssessmentStatus.NOT_DONE), "timepoint": assessment.timepoint},
        reason=cleaned,
    )
