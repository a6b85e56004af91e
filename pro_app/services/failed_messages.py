"""Messages that failed for good among the user's patients: the worklist's "failed" section.

A message fails for good when every retry is used up or the address is refused outright
(services/dispatch.py). The nurse sees it here, with the error, to correct the contact and send
again; each query is one statement, whatever the number of patients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func

from pro_app.extensions import db
from pro_app.models import (
    Assessment,
    Message,
    MessageStatus,
    Patient,
    PatientContact,
    Site,
    StaffUser,
)
from pro_app.services.worklist_query import PAGE_SIZE, WorklistQuery, filtered


def _failed_statement(user: StaffUser, query: WorklistQuery, *columns: Any) -> Select[Any]:
    statement = filtered(
        db.select(*columns)
        .select_from(Message)
        .join(Patient, Patient.id == Message.patient_id)
        .join(Site, Site.id == Patient.site_id)
        .outerjoin(Assessment, Assessment.id == Message.assessment_id)
        .outerjoin(PatientContact, PatientContact.patient_id == Patient.id)
        .where(Message.status == MessageStatus.FAILED),
        user,
        query,
    )
    if query.timepoint is not None:
        statement = statement.where(Assessment.timepoint == query.timepoint)
    return statement


def count_failed(user: StaffUser, query: WorklistQuery) -> int:
    """How many messages failed for good among the user's patients (1 statement)."""
    return db.session.scalar(_failed_statement(user, query, func.count(Message.id))) or 0


@dataclass(frozen=True)
class FailedMessage:
    message: Message
    patient: Patient
    site: Site
    timepoint: str | None
    preferred_channel: str | None


def failed_messages(user: StaffUser, query: WorklistQuery) -> list[FailedMessage]:
    """One page of failed messages, newest first (1 statement)."""
    rows = db.session.execute(
        _failed_statement(
            user,
            query,
            Message,
            Patient,
            Site,
            Assessment.timepoint,
            PatientContact.preferred_channel,
        )
        .order_by(Message.scheduled_for.desc(), Message.id.desc())
        .limit(PAGE_SIZE)
        .offset((query.page - 1) * PAGE_SIZE)
    ).all()
    return [FailedMessage(*row) for row in rows]
