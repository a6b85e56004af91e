"""Planning the outbox: the rows the schedule implies for a patient, kept in step with events.

Every change (enrolment, randomization date corrected, pause, resume, withdrawal, death,
completion) calls sync_patient_messages(), which reconciles the stored rows with the plan:
unsent rows move, come back or are cancelled; sent and failed rows are history and never change.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

from pro_app.extensions import db
from pro_app.models import Assessment, Message, MessageStatus, Patient
from pro_app.protocol.reminders import plan_messages
from pro_app.services.definitions import trial_schedule

# Rows the plan may still change; the others record what happened.
UNSENT = (MessageStatus.PENDING, MessageStatus.CANCELLED)


def dedupe_key(patient: Patient, timepoint: str, kind: str, channel: str) -> str:
    """The same message can be planned only once: patient, time point, kind, channel."""
    return f"{patient.id}:{timepoint}:{kind}:{channel}"


def message_channel(patient: Patient) -> str | None:
    """The patient's preferred channel if a contact exists for it, else the schedule's order."""
    contact = patient.contact
    if contact is None:
        return None
    reachable = {"email": bool(contact.email), "sms": bool(contact.mobile)}
    if reachable.get(contact.preferred_channel):
        return contact.preferred_channel
    return next((c for c in trial_schedule().reminders.channels if reachable.get(c)), None)


class PlannedRow(NamedTuple):
    assessment: Assessment
    kind: str
    channel: str
    send_at: datetime


def planned_rows(
    patient: Patient, assessments: list[Assessment], now: datetime
) -> dict[str, PlannedRow]:
    """dedupe key → the row that every message the plan wants now should have."""
    channel = message_channel(patient)
    if channel is None or not patient.is_active or patient.is_reminders_paused:
        return {}
    schedule = trial_schedule()
    tz = ZoneInfo(patient.timezone)
    wanted: dict[str, PlannedRow] = {}
    for assessment in assessments:
        if assessment.is_final:
            continue
        for planned in plan_messages(schedule, assessment.window, tz, not_before=now):
            key = dedupe_key(patient, assessment.timepoint, planned.kind, channel)
            wanted[key] = PlannedRow(assessment, planned.kind, channel, max(planned.send_at, now))
    return wanted


def sync_patient_messages(patient: Patient, now: datetime) -> None:
    """Make the patient's unsent outbox rows match the plan as of now."""
    assessments = list(
        db.session.scalars(db.select(Assessment).where(Assessment.patient_id == patient.id))
    )
    wanted = planned_rows(patient, assessments, now)
    existing = {
        message.dedupe_key: message
        for message in db.session.scalars(
            db.select(Message).where(Message.patient_id == patient.id)
        )
    }
    for key, message in existing.items():
        if message.status not in UNSENT:
            continue
        if key in wanted:
            message.status = MessageStatus.PENDING
            message.scheduled_for = message.next_attempt_at = wanted[key].send_at
            message.last_error = None
        elif message.status == MessageStatus.PENDING and not _overdue_and_still_wanted(
            message, patient, now
        ):
            message.status = MessageStatus.CANCELLED
            message.last_error = "no longer planned"
    for key, (assessment, kind, channel, send_at) in wanted.items():
        if key in existing:
            continue
        db.session.add(
            Message(
                patient=patient,
                assessment=assessment,
                kind=kind,
                channel=channel,
                dedupe_key=key,
                scheduled_for=send_at,
                next_attempt_at=send_at,
                created_at=now,
            )
        )


def _overdue_and_still_wanted(message: Message, patient: Patient, now: datetime) -> bool:
    # A re-plan in the middle of a window leaves out reminders whose time has passed; if one is
    # still waiting for the dispatcher it stays, and the dispatcher's own checks decide on it.
    followed = patient.is_active and not patient.is_reminders_paused
    assessment_open = message.assessment is not None and not message.assessment.is_final
    return message.scheduled_for <= now and followed and assessment_open


def cancel_pending_messages(patient: Patient, reason: str) -> int:
    """Cancel everything not yet sent (withdrawal, death, pause); returns how many."""
    pending = db.session.scalars(
        db.select(Message).where(
            Message.patient_id == patient.id, Message.status == MessageStatus.PENDING
        )
    )
    count = 0
    for message in pending:
        message.status = MessageStatus.CANCELLED
        message.last_error = reason
        count += 1
    return count
