"""Changes of a patient's participation: withdrawal, death, pausing and resuming reminders."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask_babel import LazyString

from pro_app.extensions import db
from pro_app.i18n import _l
from pro_app.models import AssessmentStatus, Patient, PatientStatus
from pro_app.models.assessment import Assessment
from pro_app.services import audit
from pro_app.services.outbox import cancel_pending_messages, sync_patient_messages


class StatusChangeError(ValueError):
    """A change that cannot be made; the message says why, in the user's language."""

    def __init__(self, message: str | LazyString) -> None:
        super().__init__(message)
        self.message = message


def withdraw(patient: Patient, on: date, reason: str, now: datetime, actor: audit.Actor) -> None:
    """Stop the patient's participation: no more questionnaires or messages from now on."""
    _end_participation(patient, PatientStatus.WITHDRAWN, on, now, actor, reason=reason.strip())


def record_death(patient: Patient, on: date, now: datetime, actor: audit.Actor) -> None:
    """Record a death: every pending message is cancelled at once."""
    _end_participation(patient, PatientStatus.DECEASED, on, now, actor, reason=None)


def _end_participation(
    patient: Patient,
    status: PatientStatus,
    on: date,
    now: datetime,
    actor: audit.Actor,
    reason: str | None,
) -> None:
    if patient.status != PatientStatus.ACTIVE:
        raise StatusChangeError(_l("This patient is no longer followed."))
    if on > now.astimezone(ZoneInfo(patient.timezone)).date():
        raise StatusChangeError(_l("The date cannot be in the future."))
    if on < patient.randomized_on:
        raise StatusChangeError(_l("The date cannot be before randomization."))
    if status == PatientStatus.WITHDRAWN and not reason:
        raise StatusChangeError(_l("Give the reason for the withdrawal."))
    before = {"status": patient.status}
    patient.status = status
    if status == PatientStatus.WITHDRAWN:
        patient.withdrawn_on, patient.withdrawal_reason = on, (reason or "")[:500]
    else:
        patient.died_on = on
    cancelled = cancel_pending_messages(patient, f"patient {status}")
    # Questionnaires still to come are not "missed": they will never be asked.
    open_assessments = db.session.scalars(
        db.select(Assessment).where(
            Assessment.patient_id == patient.id,
            Assessment.status.in_(
                [AssessmentStatus.SCHEDULED, AssessmentStatus.OPEN, AssessmentStatus.IN_PROGRESS]
            ),
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


def set_reminders_paused(
    patient: Patient, paused: bool, now: datetime, actor: audit.Actor, reason: str | None = None
) -> None:
    """Pause (cancel what is pending) or resume (plan again from now) the patient's reminders."""
    if patient.is_reminders_paused == paused:
        return
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
