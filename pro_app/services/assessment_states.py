"""Time-driven assessment states: a window opens (scheduled → open), closes (→ missed)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import or_, update

from pro_app.extensions import db
from pro_app.models import Assessment, AssessmentStatus, Patient
from pro_app.models.assessment import ANSWERABLE_STATUSES

UPDATE_CHUNK = 500


def advance_assessment_states(now: datetime) -> tuple[int, int]:
    """Open the windows that have opened and mark missed those that closed; (opened, missed)."""
    # Dates are local to each patient: select around today in UTC, then decide per time zone.
    soon = (now + timedelta(days=1)).date()
    grace = timedelta(minutes=current_app.config["PATIENT_SUBMIT_GRACE_MINUTES"])
    rows = db.session.execute(
        db.select(Assessment, Patient.timezone)
        .join(Patient, Patient.id == Assessment.patient_id)
        .where(
            or_(
                (Assessment.status == AssessmentStatus.SCHEDULED)
                & (Assessment.window_opens_on <= soon),
                Assessment.status.in_(ANSWERABLE_STATUSES) & (Assessment.window_closes_on < soon),
            )
        )
    ).all()
    to_open, to_miss = [], []
    for assessment, timezone in rows:
        tz = ZoneInfo(timezone)
        window = assessment.window
        if now >= window.closes_at(tz) + grace:
            to_miss.append(assessment.id)
        elif assessment.status == AssessmentStatus.SCHEDULED and now >= window.opens_at(tz):
            to_open.append(assessment.id)
    _set_status(to_open, AssessmentStatus.OPEN)
    _set_status(to_miss, AssessmentStatus.MISSED)
    return len(to_open), len(to_miss)


def _set_status(ids: list[int], status: AssessmentStatus) -> None:
    for start in range(0, len(ids), UPDATE_CHUNK):
        db.session.execute(
            update(Assessment)
            .where(Assessment.id.in_(ids[start : start + UPDATE_CHUNK]))
            .where(Assessment.status.in_(ANSWERABLE_STATUSES))  # a submit that just happened wins
            .values(status=status)
            .execution_options(synchronize_session=False)
        )
