"""Paper forms typed in by site staff: mode paper, who entered it, the date on the paper."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import Flask, render_template
from flask.testing import FlaskClient
from flask_login import login_user

from pro_app.extensions import db
from pro_app.models import Answer, Assessment, AuditEvent, Score, StaffUser
from pro_app.models.types import utcnow
from pro_app.services.assessment_states import advance_assessment_states
from pro_app.services.definitions import instrument_registry
from pro_app.services.paper_forms import paper_pages, record_paper_form
from tests import factories

NURSE = "nurse@mi01.example.org"


def _baseline(app: Flask, patient_id: int) -> int:
    with app.app_context():
        return db.session.scalar(
            db.select(Assessment.id).where(
                Assessment.patient_id == patient_id, Assessment.timepoint == "baseline"
            )
        )


def _paper_answers(app: Flask, assessment_id: int, blank: set[str]) -> dict[str, str]:
    """Every item answered with its lowest value, except the blanks ("no answer")."""
    with app.app_context():
        assessment = db.session.get(Assessment, assessment_id)
        registry = instrument_registry()
        values = {}
        for page in paper_pages(assessment):
            for item, name in zip(page.items, page.field_names, strict=True):
                scale = registry.get(page.instrument).item(item).response_scale
                values[name] = "" if name in blank else str(scale.min)
        return values


def _today() -> date:
    return utcnow().astimezone(factories.ROME).date()


def _setup(app: Flask, client: FlaskClient, **enrol: Any) -> tuple[int, int]:
    """A nurse signed in, and a patient of the nurse's site: (nurse id, baseline id)."""
    nurse_id = factories.staff_user(app, NURSE, "nurse", "MI01", language="en")
    patient = factories.enrol(app, "MI01-0001", **enrol)
    factories.sign_in(client, NURSE)
    return nurse_id, _baseline(app, patient.patient_id)


def _post(client: FlaskClient, assessment_id: int, data: dict[str, str]) -> Any:
    url = f"/staff/assessments/{assessment_id}/paper"
    page = client.get(url)
    return client.post(url, data={"csrf_token": factories.csrf_token(page.text), **data})


def _audit_count(app: Flask, action: str | None = None) -> int:
    with app.app_context():
        query = db.select(db.func.count(AuditEvent.id))
        if action:
            query = query.where(AuditEvent.action == action)
        return db.session.scalar(query) or 0


def test_paper_form_is_stored_as_paper_with_skips_and_scores(
    app: Flask, client: FlaskClient
) -> None:
    nurse_id, assessment_id = _setup(app, client)
    page = client.get(f"/staff/assessments/{assessment_id}/paper")
    assert page.status_code == 200
    assert 'name="qlq_c30-29"' in page.text
    assert 'name="qlq_gi_net21-' in page.text
    blanks = {"qlq_c30-29", "qlq_c30-30", "qlq_c30-5"}
    data = _paper_answers(app, assessment_id, blanks)
    paper_date = _today() - timedelta(days=1)
    response = _post(client, assessment_id, {**data, "paper_completed_on": paper_date.isoformat()})
    assert response.status_code == 302, response.text
    with app.app_context():
        assessment = db.session.get(Assessment, assessment_id)
        assert assessment.status == "completed"
        assert assessment.mode == "paper"
        assert assessment.entered_by_id == nurse_id
        assert assessment.paper_completed_on == paper_date
        assert assessment.completed_at is not None
        answers = {f"{a.instrument}-{a.item}": a.value for a in assessment.answers}
        assert set(answers) == set(data)  # every item has a row: answered or skipped
        assert all(answers[name] is None for name in blanks)
        assert answers["qlq_c30-1"] == 1
        scores = {(s.instrument, s.scale): s.value for s in assessment.scores}
        assert scores[("qlq_c30", "PF2")] is not None
        assert scores[("qlq_c30", "QL2")] is None  # both of its items skipped
        event = db.session.scalar(
            db.select(AuditEvent).where(AuditEvent.action == "assessment.paper_entry")
        )
        assert event is not None
        assert event.actor_id == str(nurse_id)
        assert event.after["paper_completed_on"] == paper_date.isoformat()
    # Done: no second paper form.
    assert client.get(f"/staff/assessments/{assessment_id}/paper").status_code == 409


def test_paper_form_for_a_missed_assessment_is_accepted_and_says_so(
    app: Flask, client: FlaskClient
) -> None:
    enrolled_at = utcnow() - timedelta(days=30)
    _nurse, assessment_id = _setup(app, client, now=enrolled_at)
    with app.app_context():
        advance_assessment_states(utcnow())
        db.session.commit()
        assessment = db.session.get(Assessment, assessment_id)
        assert assessment.status == "missed"
        closes_on = assessment.window_closes_on
    page = client.get(f"/staff/assessments/{assessment_id}/paper")
    assert page.status_code == 200
    assert "can still be entered" in page.text
    data = _paper_answers(app, assessment_id, set())
    late = closes_on + timedelta(days=2)
    response = _post(client, assessment_id, {**data, "paper_completed_on": late.isoformat()})
    assert response.status_code == 302
    with app.app_context():
        assessment = db.session.get(Assessment, assessment_id)
        assert (assessment.status, assessment.mode) == ("completed", "paper")
        event = db.session.scalar(
            db.select(AuditEvent).where(AuditEvent.action == "assessment.paper_entry")
        )
        assert event is not None
        assert event.before == {"status": "missed", "mode": None}
    followed = client.get(response.headers["Location"], follow_redirects=True)
    assert "completed late, on paper" in followed.text


def _nothing_stored(app: Flask, assessment_id: int) -> None:
    with app.app_context():
        assessment = db.session.get(Assessment, assessment_id)
        assert assessment.status == "scheduled"
        assert assessment.mode is None
        assert db.session.scalar(db.select(db.func.count(Answer.id))) == 0
        assert db.session.scalar(db.select(db.func.count(Score.id))) == 0
    assert _audit_count(app, "assessment.paper_entry") == 0


def test_bad_input_is_refused_and_nothing_is_stored(app: Flask, client: FlaskClient) -> None:
    _nurse, assessment_id = _setup(app, client)
    good = _paper_answers(app, assessment_id, set())
    today = _today()
    cases = [
        ({**good, "paper_completed_on": (today + timedelta(days=1)).isoformat()}, "future"),
        ({**good, "paper_completed_on": (today - timedelta(days=60)).isoformat()}, "before"),
        ({**good, "paper_completed_on": ""}, "Enter the date"),
        ({**good, "paper_completed_on": "<script>alert(1)</script>"}, "date"),
        ({**good, "paper_completed_on": today.isoformat(), "qlq_c30-1": "9"}, "not one of"),
        ({**good, "paper_completed_on": today.isoformat(), "qlq_c30-1": "x"}, "not one of"),
        ({**good, "paper_completed_on": today.isoformat(), "qlq_c30-99": "1"}, "not on this"),
    ]
    for data, message in cases:
        response = _post(client, assessment_id, data)
        assert response.status_code == 400, data
        assert message in response.text
        assert "<script>alert" not in response.text
        _nothing_stored(app, assessment_id)


def test_no_csrf_token_is_refused(app: Flask, client: FlaskClient) -> None:
    _nurse, assessment_id = _setup(app, client)
    data = _paper_answers(app, assessment_id, set())
    response = client.post(
        f"/staff/assessments/{assessment_id}/paper",
        data={**data, "paper_completed_on": _today().isoformat()},
    )
    assert response.status_code == 400
    _nothing_stored(app, assessment_id)


def test_get_writes_nothing(app: Flask, client: FlaskClient) -> None:
    _nurse, assessment_id = _setup(app, client)
    before = _audit_count(app)
    assert client.get(f"/staff/assessments/{assessment_id}/paper").status_code == 200
    assert _audit_count(app) == before
    _nothing_stored(app, assessment_id)


def test_other_sites_and_other_roles_are_kept_out(app: Flask, client: FlaskClient) -> None:
    _nurse, assessment_id = _setup(app, client)
    url = f"/staff/assessments/{assessment_id}/paper"
    factories.staff_user(app, "nurse@rm01.example.org", "nurse", "RM01")
    factories.staff_user(app, "analyst@example.org", "analyst", None)
    other = app.test_client()
    factories.sign_in(other, "nurse@rm01.example.org")
    assert other.get(url).status_code == 404
    assert other.post(url, data={"paper_completed_on": _today().isoformat()}).status_code in (
        400,
        404,
    )
    analyst = app.test_client()
    factories.sign_in(analyst, "analyst@example.org")
    assert analyst.get(url).status_code == 403
    assert app.test_client().get(url).status_code == 302  # to the sign-in page
    assert client.get("/staff/assessments/999999/paper").status_code == 404
    _nothing_stored(app, assessment_id)


def _actions(app: Flask, staff_id: int, assessment_id: int) -> str:
    with app.app_context(), app.test_request_context():
        login_user(db.session.get(StaffUser, staff_id))
        assessment = db.session.get(Assessment, assessment_id)
        return render_template(
            "staff/_assessment_actions.html", assessment=assessment, patient=assessment.patient
        )


def test_assessment_actions_fragment_follows_status_and_role(app: Flask) -> None:
    nurse = factories.staff_user(app, NURSE, "nurse", "MI01", language="en")
    investigator = factories.staff_user(app, "inv@mi01.example.org", "investigator", "MI01")
    analyst = factories.staff_user(app, "analyst@example.org", "analyst", None)
    patient_id = factories.enrol(app, "MI01-0001").patient_id
    assessment_id = _baseline(app, patient_id)
    with app.app_context():
        month6 = db.session.scalar(
            db.select(Assessment.id).where(
                Assessment.patient_id == patient_id, Assessment.timepoint == "month6"
            )
        )
    # Months away: no paper form can carry a date that early yet.
    assert "/paper" not in _actions(app, nurse, month6)
    paper = f"/staff/assessments/{assessment_id}/paper"
    correct = f"/staff/assessments/{assessment_id}/correct"
    waiting = _actions(app, nurse, assessment_id)
    assert paper in waiting
    assert correct not in waiting
    assert _actions(app, analyst, assessment_id).strip() == ""
    with app.app_context():
        assessment = db.session.get(Assessment, assessment_id)
        record_paper_form(
            assessment,
            {},
            completed_on=_today(),
            staff_user=db.session.get(StaffUser, nurse),
            now=utcnow(),
        )
        db.session.commit()
    assert _actions(app, nurse, assessment_id).strip() == ""  # nurses do not correct
    done = _actions(app, investigator, assessment_id)
    assert correct in done
    assert paper not in done
