"""Patients enrolled through the services, and what the database holds about them afterwards."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from flask import Flask
from sqlalchemy import func

from pro_app.extensions import db
from pro_app.models import Answer, Assessment, AuditEvent, Score
from tests import factories
from tests.factories import Enrolled

# Log lines that must never appear in a server's log during these tests.
FORBIDDEN_LOG_TEXT = ("database is locked", "Traceback", "OperationalError", "IntegrityError")


def enrol_cohort(app: Flask, count: int, prefix: str = "LD") -> list[Enrolled]:
    """`count` patients of site MI01, randomized today, baseline open now."""
    return [factories.enrol(app, f"MI01-{prefix}{index:04d}") for index in range(count)]


def baseline_ids(app: Flask, cohort: Iterable[Enrolled]) -> dict[int, int]:
    """patient id → id of the patient's baseline assessment."""
    patient_ids = [patient.patient_id for patient in cohort]
    with app.app_context():
        rows = db.session.execute(
            db.select(Assessment.patient_id, Assessment.id).where(
                Assessment.patient_id.in_(patient_ids), Assessment.timepoint == "baseline"
            )
        )
        return {patient_id: assessment_id for patient_id, assessment_id in rows}


def stored_answers(app: Flask, assessment_ids: Iterable[int]) -> dict[int, dict[str, int | None]]:
    """assessment id → field name → stored value, for these assessments."""
    stored: dict[int, dict[str, int | None]] = {}
    with app.app_context():
        rows = db.session.execute(
            db.select(Answer.assessment_id, Answer.instrument, Answer.item, Answer.value).where(
                Answer.assessment_id.in_(list(assessment_ids))
            )
        )
        for assessment_id, instrument, item, value in rows:
            stored.setdefault(assessment_id, {})[f"{instrument}-{item}"] = value
    return stored


def answer_rows(app: Flask) -> int:
    """Answer rows in the whole database (duplicates would show here)."""
    with app.app_context():
        return int(db.session.scalar(db.select(func.count(Answer.id))) or 0)


def statuses(app: Flask, assessment_ids: Iterable[int]) -> Counter[str]:
    """How many of these assessments are in each status."""
    with app.app_context():
        rows = db.session.scalars(
            db.select(Assessment.status).where(Assessment.id.in_(list(assessment_ids)))
        )
        return Counter(rows)


def audit_counts(app: Flask, action: str) -> Counter[str]:
    """entity id → number of audit rows with this action."""
    with app.app_context():
        rows = db.session.scalars(
            db.select(AuditEvent.entity_id).where(AuditEvent.action == action)
        )
        return Counter(str(entity_id) for entity_id in rows)


def score_rows(app: Flask) -> Counter[int]:
    """assessment id → number of score rows."""
    with app.app_context():
        return Counter(db.session.scalars(db.select(Score.assessment_id)))


def log_problems(log: str) -> list[str]:
    """Lines of a server log that tell of a failure a user could have seen."""
    return [line for line in log.splitlines() if any(text in line for text in FORBIDDEN_LOG_TEXT)]
