"""One statement stores a page's answers: new ones inserted, changed ones updated, none lost."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from pro_app.extensions import db
from pro_app.models import Answer, Assessment
from pro_app.models.types import utcnow
from pro_app.services.answering import upsert_answers
from tests import factories


def _stored(assessment_id: int) -> dict[tuple[str, int], int | None]:
    answers = db.session.scalars(db.select(Answer).where(Answer.assessment_id == assessment_id))
    return {(answer.instrument, answer.item): answer.value for answer in answers}


def _first_assessment(patient_id: int) -> Assessment:
    assessment = db.session.scalars(
        db.select(Assessment).where(Assessment.patient_id == patient_id)
    ).first()
    assert assessment is not None
    return assessment


def test_one_upsert_inserts_new_answers_and_updates_changed_ones(app: Flask) -> None:
    enrolled = factories.enrol(app)
    first, later = utcnow(), utcnow() + timedelta(minutes=5)
    with app.app_context():
        assessment = _first_assessment(enrolled.patient_id)
        upsert_answers(assessment, {"qlq_c30-1": 1, "qlq_c30-2": 2}, first)
        upsert_answers(assessment, {"qlq_c30-2": 4, "qlq_c30-3": None}, later)
        db.session.commit()
        assert _stored(assessment.id) == {
            ("qlq_c30", 1): 1,
            ("qlq_c30", 2): 4,
            ("qlq_c30", 3): None,
        }
        times = {
            answer.item: answer.answered_at
            for answer in db.session.scalars(
                db.select(Answer).where(Answer.assessment_id == assessment.id)
            )
        }
        assert times[1] < times[2] == times[3]


def test_an_empty_page_writes_nothing_and_does_not_fail(app: Flask) -> None:
    enrolled = factories.enrol(app)
    with app.app_context():
        assessment = _first_assessment(enrolled.patient_id)
        upsert_answers(assessment, {}, utcnow())
        db.session.commit()
        assert _stored(assessment.id) == {}
