"""Corrections of submitted answers: investigators only, with a reason, the original kept."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from pro_app.extensions import db
from pro_app.models import Answer, AnswerCorrection, Assessment, AuditEvent, Score, StaffUser
from pro_app.models.types import utcnow
from pro_app.services.corrections import corrections_for
from pro_app.services.paper_forms import paper_pages, record_paper_form
from tests import factories

INVESTIGATOR = "investigator@mi01.example.org"
NURSE = "nurse@mi01.example.org"


def _completed_assessment(app: Flask, code: str = "MI01-0001", site_code: str = "MI01") -> int:
    """A baseline completed on paper: every item 1, except qlq_c30-30 skipped."""
    enrolled = factories.enrol(app, code, site_code=site_code)
    entered_by = factories.staff_user(app, f"entry@{code.lower()}.example.org", "nurse", site_code)
    with app.app_context():
        assessment = db.session.scalar(
            db.select(Assessment).where(
                Assessment.patient_id == enrolled.patient_id, Assessment.timepoint == "baseline"
            )
        )
        values: dict[str, int | None] = {
            name: 1 for page in paper_pages(assessment) for name in page.field_names
        }
        values["qlq_c30-30"] = None
        now = utcnow()
        record_paper_form(
            assessment,
            values,
            completed_on=now.astimezone(factories.ROME).date(),
            staff_user=db.session.get(StaffUser, entered_by),
            now=now,
        )
        db.session.commit()
        return assessment.id


def _signed_in(app: Flask, email: str, role: str, site_code: str | None = "MI01") -> FlaskClient:
    client = app.test_client()
    factories.staff_user(app, email, role, site_code, language="en")
    factories.sign_in(client, email)
    return client


def _url(assessment_id: int) -> str:
    return f"/staff/assessments/{assessment_id}/correct"


def _correct(client: FlaskClient, assessment_id: int, item: str, **data: str) -> Any:
    page = client.get(_url(assessment_id), query_string={"item": item})
    assert page.status_code == 200
    return client.post(
        _url(assessment_id),
        data={"csrf_token": factories.csrf_token(page.text), "item": item, **data},
    )


def _state(app: Flask, assessment_id: int) -> tuple[int | None, float | None, int, int]:
    """(qlq_c30-1 value, PF2 score, corrections, correction audit rows)."""
    with app.app_context():
        value = db.session.scalar(
            db.select(Answer.value).where(
                Answer.assessment_id == assessment_id,
                Answer.instrument == "qlq_c30",
                Answer.item == 1,
            )
        )
        pf2 = db.session.scalar(
            db.select(Score.value).where(Score.assessment_id == assessment_id, Score.scale == "PF2")
        )
        corrections = db.session.scalar(db.select(db.func.count(AnswerCorrection.id))) or 0
        audits = (
            db.session.scalar(
                db.select(db.func.count(AuditEvent.id)).where(AuditEvent.action == "answer.correct")
            )
            or 0
        )
        return value, pf2, corrections, audits


def test_nurse_may_not_correct(app: Flask) -> None:
    assessment_id = _completed_assessment(app)
    nurse = _signed_in(app, NURSE, "nurse")
    assert nurse.get(_url(assessment_id)).status_code == 403
    page = nurse.get("/auth/sign-in?x=1", follow_redirects=True)
    response = nurse.post(
        _url(assessment_id),
        data={
            "csrf_token": factories.csrf_token(page.text),
            "item": "qlq_c30-1",
            "new_value": "3",
            "reason": "typo",
        },
    )
    assert response.status_code == 403
    assert _state(app, assessment_id) == (1, 100.0, 0, 0)


def test_correction_keeps_original_reason_rescores_and_audits(app: Flask) -> None:
    assessment_id = _completed_assessment(app)
    client = _signed_in(app, INVESTIGATOR, "investigator")
    listing = client.get(_url(assessment_id))
    assert listing.status_code == 200
    assert "item=qlq_c30-1" in listing.text
    before = _state(app, assessment_id)
    assert before == (1, 100.0, 0, 0)
    response = _correct(
        client, assessment_id, "qlq_c30-1", new_value="4", reason="Transcription error"
    )
    assert response.status_code == 302, response.text
    value, pf2, corrections, audits = _state(app, assessment_id)
    assert value == 4
    assert pf2 is not None
    assert pf2 < 100.0  # recomputed from the corrected answer
    assert (corrections, audits) == (1, 1)
    with app.app_context():
        correction = db.session.scalar(db.select(AnswerCorrection))
        assert correction is not None
        assert (correction.original_value, correction.new_value) == (1, 4)
        assert correction.reason == "Transcription error"
        event = db.session.scalar(
            db.select(AuditEvent).where(AuditEvent.action == "answer.correct")
        )
        assert event is not None
        assert event.reason == "Transcription error"
        assert event.before["value"] == 1
        assert event.after["value"] == 4
        assert "qlq_c30.PF2" in event.after["scores"]
        assert event.actor_id == str(correction.corrected_by_id)
    page = client.get(response.headers["Location"])
    assert "Transcription error" in page.text


def test_a_chain_of_corrections_reads_back_to_the_original(app: Flask) -> None:
    assessment_id = _completed_assessment(app)
    client = _signed_in(app, INVESTIGATOR, "investigator")
    assert (
        _correct(client, assessment_id, "qlq_c30-1", new_value="4", reason="a").status_code == 302
    )
    assert (
        _correct(client, assessment_id, "qlq_c30-1", new_value="none", reason="b").status_code
        == 302
    )
    # A skipped item can be given its value from the paper, too.
    assert (
        _correct(client, assessment_id, "qlq_c30-30", new_value="6", reason="c").status_code == 302
    )
    with app.app_context():
        found = corrections_for([assessment_id])
        chain = found[(assessment_id, "qlq_c30", 1)]
        assert [(c.original_value, c.new_value) for c in chain] == [(1, 4), (4, None)]
        assert [(c.original_value, c.new_value) for c in found[(assessment_id, "qlq_c30", 30)]] == [
            (None, 6)
        ]
        answer = db.session.scalar(
            db.select(Answer).where(
                Answer.assessment_id == assessment_id,
                Answer.instrument == "qlq_c30",
                Answer.item == 1,
            )
        )
        assert answer is not None
        assert answer.is_skipped
        ql2 = db.session.scalar(
            db.select(Score.value).where(Score.assessment_id == assessment_id, Score.scale == "QL2")
        )
        assert ql2 == pytest.approx((3.5 - 1) / 6 * 100)  # items 29 = 1, 30 = 6 on a 1–7 scale


def test_bad_corrections_change_nothing(app: Flask) -> None:
    assessment_id = _completed_assessment(app)
    client = _signed_in(app, INVESTIGATOR, "investigator")
    cases = [
        ({"new_value": "3", "reason": ""}, "Give the reason"),
        ({"new_value": "3", "reason": "   "}, "Give the reason"),
        ({"new_value": "3", "reason": "<script>alert(1)</script>"}, "&lt; and &gt;"),
        ({"new_value": "3", "reason": "x" * 1001}, "At most 1000"),
        ({"new_value": "9", "reason": "typo"}, "Not a valid choice"),
        ({"reason": "typo"}, "Choose the new value"),
        ({"new_value": "1", "reason": "typo"}, "same as the current"),
    ]
    for data, message in cases:
        response = _correct(client, assessment_id, "qlq_c30-1", **data)
        assert response.status_code == 400, data
        assert message in response.text, data
        assert "<script>alert" not in response.text
        assert _state(app, assessment_id) == (1, 100.0, 0, 0)
    page = client.get(_url(assessment_id))
    forged = client.post(
        _url(assessment_id),
        data={
            "csrf_token": factories.csrf_token(page.text),
            "item": "qlq_c30-99",
            "new_value": "1",
            "reason": "typo",
        },
    )
    assert forged.status_code == 400
    assert client.get(_url(assessment_id), query_string={"item": "nope-1"}).status_code == 400
    no_token = client.post(
        _url(assessment_id), data={"item": "qlq_c30-1", "new_value": "3", "reason": "typo"}
    )
    assert no_token.status_code == 400
    assert _state(app, assessment_id) == (1, 100.0, 0, 0)


def test_only_completed_assessments_of_the_own_site(app: Flask) -> None:
    assessment_id = _completed_assessment(app)
    enrolled = factories.enrol(app, "MI01-0002")
    other_site = _signed_in(app, "investigator@rm01.example.org", "investigator", "RM01")
    assert other_site.get(_url(assessment_id)).status_code == 404
    client = _signed_in(app, INVESTIGATOR, "investigator")
    with app.app_context():
        open_id = db.session.scalar(
            db.select(Assessment.id).where(
                Assessment.patient_id == enrolled.patient_id, Assessment.timepoint == "baseline"
            )
        )
    assert client.get(_url(open_id)).status_code == 409
    analyst = _signed_in(app, "analyst@example.org", "analyst", None)
    assert analyst.get(_url(assessment_id)).status_code == 403


def test_get_writes_nothing(app: Flask) -> None:
    assessment_id = _completed_assessment(app)
    client = _signed_in(app, INVESTIGATOR, "investigator")
    with app.app_context():
        events = db.session.scalar(db.select(db.func.count(AuditEvent.id)))
    assert client.get(_url(assessment_id), query_string={"item": "qlq_c30-1"}).status_code == 200
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(AuditEvent.id))) == events
    assert _state(app, assessment_id) == (1, 100.0, 0, 0)
