"""Clinic tablet mode: staff hand the device over for one assessment; it locks at the end."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from pro_app.extensions import db
from pro_app.models import (
    Answer,
    Assessment,
    AssessmentStatus,
    AuditEvent,
    Patient,
    PatientLink,
    StaffSession,
)
from pro_app.models.types import utcnow
from pro_app.patient import session as patient_session
from pro_app.services import audit, patient_status
from tests import factories
from tests.factories import csrf_token

NURSE = "nurse@mi01.example.org"
LOCKED = "Please return the device to the staff"


def _assessment_ids(app: Flask, patient_id: int) -> list[int]:
    with app.app_context():
        return list(
            db.session.scalars(
                db.select(Assessment.id)
                .where(Assessment.patient_id == patient_id)
                .order_by(Assessment.window_opens_on)
            )
        )


def _assessment(app: Flask, assessment_id: int) -> Assessment:
    with app.app_context():
        found = db.session.get(Assessment, assessment_id)
        assert found is not None
        db.session.expunge(found)
        return found


def _answers(app: Flask) -> dict[str, int | None]:
    with app.app_context():
        return {f"{a.instrument}-{a.item}": a.value for a in db.session.scalars(db.select(Answer))}


def _token(client: FlaskClient) -> str:
    return csrf_token(client.get("/").text)


def _hand_over(client: FlaskClient, assessment_id: int):  # type: ignore[no-untyped-def]
    return client.post(
        f"/staff/assessments/{assessment_id}/tablet", data={"csrf_token": _token(client)}
    )


@pytest.fixture
def patient(app: Flask) -> factories.Enrolled:
    """An English-speaking patient whose baseline questionnaire is open now."""
    return factories.enrol(app, language="en")


@pytest.fixture
def tablet(app: Flask, client: FlaskClient, patient: factories.Enrolled) -> int:
    """A nurse signs in on `client` and hands it over for the baseline; returns its id."""
    factories.staff_user(app)
    assert factories.sign_in(client, NURSE).status_code == 302
    baseline = _assessment_ids(app, patient.patient_id)[0]
    response = _hand_over(client, baseline)
    assert response.status_code == 302, response.text
    assert response.headers["Location"] == "/q"
    return baseline


def _page(client: FlaskClient, number: int = 1) -> str:
    response = client.get(f"/q/page/{number}")
    assert response.status_code == 200, response.headers.get("Location")
    return response.text


def _items(html: str) -> list[str]:
    return sorted(set(re.findall(r'type="radio" name="([a-z0-9_]+-\d+)"', html)))


def _post_page(client: FlaskClient, html: str, number: int, value: str = "2", action: str = "next"):  # type: ignore[no-untyped-def]
    data = {**factories.hidden_fields(html), "action": action}
    return client.post(f"/q/page/{number}", data={**data, **dict.fromkeys(_items(html), value)})


def _session(client: FlaskClient) -> dict[str, object]:
    with client.session_transaction() as session:
        return dict(session)


def test_handing_over_ends_the_staff_session(
    app: Flask, client: FlaskClient, patient: factories.Enrolled, tablet: int
) -> None:
    with app.app_context():
        sessions = list(db.session.scalars(db.select(StaffSession)))
        assert [s.revoked_at is not None for s in sessions] == [True]
        [started] = db.session.scalars(
            db.select(AuditEvent).where(AuditEvent.action == "tablet.start")
        )
        assert (started.actor_type, started.entity_id) == ("staff", str(tablet))
        assert (
            db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "staff.sign_out"))
            is not None
        )
    for url in (
        "/staff/",
        "/staff/worklist",
        f"/staff/patients/{patient.patient_id}",
        "/staff/admin/accounts",
    ):
        assert client.get(url).headers["Location"].startswith("/auth/sign-in"), url
    assert client.get("/q").headers["Location"] == "/q/page/1"
    first = _page(client)
    assert _items(first)[0] == "qlq_c30-1"
    assert 'lang="en"' in first
    assert _session(client)[patient_session.TABLET_KEY] == tablet


def test_answers_are_stored_with_mode_tablet_under_the_patient_link(
    app: Flask, client: FlaskClient, tablet: int
) -> None:
    html = _page(client)
    assert _post_page(client, html, 1).headers["Location"] == "/q/page/2"
    second = _page(client, 2)
    tap = client.post(
        "/q/answer",
        json={"form_key": factories.form_key(second), "name": "qlq_c30-6", "value": "3"},
        headers={"X-CSRFToken": csrf_token(second)},
    )
    assert tap.json == {"status": "saved"}
    assert _assessment(app, tablet).mode == "tablet"
    assert _answers(app)["qlq_c30-6"] == 3
    with app.app_context():
        link_id = db.session.scalar(db.select(PatientLink.id))
        saves = list(
            db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == "answers.save"))
        )
        assert len(saves) == 2
        assert {(e.actor_type, e.actor_id) for e in saves} == {("patient", str(link_id))}


def test_submit_locks_the_device_and_the_answers_are_gone_from_it(
    app: Flask, client: FlaskClient, tablet: int
) -> None:
    html, number = _page(client), 1
    while True:
        response = _post_page(client, html, number)
        location = response.headers["Location"]
        if location == "/q/review":
            break
        number += 1
        html = _page(client, number)
    review = client.get("/q/review").text
    submit = {
        "csrf_token": csrf_token(review),
        "form_key": factories.form_key(review),
        "action": "submit",
    }
    submitted = client.post("/q/review", data=submit)
    assert submitted.headers["Location"] == "/q/locked"
    locked = client.get("/q/locked")
    assert locked.status_code == 200
    assert LOCKED in locked.text
    assert "Thank you" in locked.text
    assert 'href="/auth/sign-in"' in locked.text
    assert "qlq_c30" not in locked.text
    assessment = _assessment(app, tablet)
    assert (assessment.status, assessment.mode) == (AssessmentStatus.COMPLETED, "tablet")
    session = _session(client)
    assert patient_session.LINK_KEY not in session
    assert patient_session.TABLET_KEY not in session
    # Back, reload, or any patient address: only the locked screen.
    for url in ("/q", "/q/page/1", "/q/page/11", "/q/review", "/q/saved"):
        assert client.get(url).headers["Location"] == "/q/locked", url
    replay = client.post("/q/review", data=submit)
    assert replay.headers["Location"] == "/q/locked"
    assert client.get("/staff/").headers["Location"].startswith("/auth/sign-in")
    with app.app_context():
        submits = db.session.scalars(
            db.select(AuditEvent).where(AuditEvent.action == "assessment.submit")
        ).all()
        assert len(submits) == 1
        assert submits[0].actor_type == "patient"


def test_save_and_finish_later_locks_and_old_pages_restore_nothing(
    app: Flask, client: FlaskClient, tablet: int
) -> None:
    html = _page(client)
    saved = _post_page(client, html, 1, value="3", action="save")
    assert saved.headers["Location"] == "/q/locked"
    assert "Your answers are saved" in client.get("/q/locked").text
    kept = _answers(app)
    assert kept == {f"qlq_c30-{n}": 3 for n in range(1, 6)}
    # The page still in the browser's history is posted again: nothing opens, nothing changes.
    again = _post_page(client, html, 1, value="1")
    assert again.headers["Location"] == "/q/locked"
    client.delete_cookie("session")  # even without the locked marker
    cleared = _post_page(client, html, 1, value="1")
    assert cleared.status_code == 401
    assert _answers(app) == kept
    assert _assessment(app, tablet).status == AssessmentStatus.IN_PROGRESS


def test_the_leave_button_locks_the_device(app: Flask, client: FlaskClient, tablet: int) -> None:
    html = _page(client)
    left = client.post("/q/leave", data={"csrf_token": csrf_token(html)})
    assert left.headers["Location"] == "/q/locked"
    # The patient's language, not the browser's, until someone chooses another.
    assert LOCKED in client.get("/q/locked", headers={"Accept-Language": "it"}).text
    assert client.get("/q/page/1").headers["Location"] == "/q/locked"


def test_the_language_switch_still_works(app: Flask, client: FlaskClient, tablet: int) -> None:
    html = _page(client)
    switched = client.post(
        "/language", data={"csrf_token": csrf_token(html), "locale": "it", "next": "/q/page/1"}
    )
    assert switched.headers["Location"] == "/q/page/1"
    italian = _page(client)
    assert 'lang="it"' in italian
    assert _post_page(client, italian, 1).headers["Location"] == "/q/page/2"
    assert _assessment(app, tablet).mode == "tablet"


def test_the_patient_sees_their_own_language_not_the_nurses_choice(
    app: Flask, client: FlaskClient, patient: factories.Enrolled
) -> None:
    factories.staff_user(app)
    factories.sign_in(client, NURSE)
    client.post("/language", data={"csrf_token": _token(client), "locale": "it"})
    english_patient = factories.enrol(app, "MI01-0002", language="en")
    baseline = _assessment_ids(app, english_patient.patient_id)[0]
    with client.session_transaction() as session:
        assert session["locale"] == "it"
    assert _hand_over(client, baseline).status_code == 302
    assert 'lang="en"' in _page(client)


def test_other_assessments_are_not_reachable(
    app: Flask, client: FlaskClient, patient: factories.Enrolled, tablet: int
) -> None:
    other = _assessment_ids(app, patient.patient_id)[1]
    html = _page(client)
    with app.test_request_context():
        link_id = db.session.scalar(db.select(PatientLink.id))
        assert link_id is not None
        forged = patient_session.make_form_key(link_id, other, 1)
    data = {**factories.hidden_fields(html), "form_key": forged, "action": "next", "qlq_c30-1": "2"}
    assert client.post("/q/page/1", data=data).status_code == 400
    tap = client.post(
        "/q/answer",
        json={"form_key": forged, "name": "qlq_c30-1", "value": "2"},
        headers={"X-CSRFToken": csrf_token(html)},
    )
    assert tap.status_code == 409
    assert _answers(app) == {}
    # The handed-over questionnaire is closed and another one opens: the tablet does not show it.
    with app.app_context():
        baseline = db.session.get(Assessment, tablet)
        following = db.session.get(Assessment, other)
        assert baseline is not None
        assert following is not None
        baseline.status = AssessmentStatus.NOT_DONE
        today = utcnow().date()
        following.window_opens_on = today - timedelta(days=1)
        following.status = AssessmentStatus.OPEN
        db.session.commit()
    assert client.get("/q").headers["Location"] == "/q/locked"
    assert client.get("/q/page/1").headers["Location"] == "/q/locked"
    # The same patient with the personal link on the web does see it.
    phone = app.test_client()
    assert "qlq_c30-1" in factories.open_link(phone, patient)


def test_an_idle_tablet_locks_but_a_posted_page_keeps_its_answers(
    app: Flask, client: FlaskClient, tablet: int
) -> None:
    html = _page(client)
    idle = (utcnow() - timedelta(hours=3)).timestamp()
    with client.session_transaction() as session:
        session[patient_session.SEEN_KEY] = idle
    kept = _post_page(client, html, 1, value="4")
    assert kept.status_code == 200
    assert kept.text.count('value="4" checked') == 5
    assert _post_page(client, kept.text, 1, value="4").headers["Location"] == "/q/page/2"
    assert _assessment(app, tablet).mode == "tablet"
    assert _session(client)[patient_session.TABLET_KEY] == tablet
    with client.session_transaction() as session:
        session[patient_session.SEEN_KEY] = idle
    assert client.get("/q/page/2").headers["Location"] == "/q/locked"


@pytest.mark.parametrize(
    ("email", "role", "site", "status"),
    [
        ("stats@example.org", "analyst", None, 403),
        ("admin@example.org", "admin", None, 403),
        ("nurse@rm02.example.org", "nurse", "RM02", 404),
    ],
)
def test_only_the_patients_site_clinicians_can_hand_over(
    app: Flask,
    client: FlaskClient,
    patient: factories.Enrolled,
    email: str,
    role: str,
    site: str | None,
    status: int,
) -> None:
    factories.staff_user(app, email, role, site)
    factories.sign_in(client, email)
    baseline = _assessment_ids(app, patient.patient_id)[0]
    assert _hand_over(client, baseline).status_code == status
    assert _hand_over(client, 9999).status_code in (403, 404)
    with app.app_context():
        assert db.session.scalar(db.select(StaffSession.revoked_at)) is None
        assert (
            db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "tablet.start"))
            is None
        )
    assert patient_session.LINK_KEY not in _session(client)


def test_investigator_can_hand_over_but_not_without_csrf(
    app: Flask, client: FlaskClient, patient: factories.Enrolled
) -> None:
    factories.staff_user(app, "pi@mi01.example.org", "investigator", "MI01")
    factories.sign_in(client, "pi@mi01.example.org")
    baseline = _assessment_ids(app, patient.patient_id)[0]
    refused = client.post(f"/staff/assessments/{baseline}/tablet")
    assert refused.status_code == 400
    assert patient_session.LINK_KEY not in _session(client)
    assert _hand_over(client, baseline).headers["Location"] == "/q"


def test_only_an_answerable_assessment_can_be_handed_over(
    app: Flask, client: FlaskClient, patient: factories.Enrolled
) -> None:
    factories.staff_user(app)
    factories.sign_in(client, NURSE)
    baseline, later = _assessment_ids(app, patient.patient_id)[:2]
    refused = _hand_over(client, later)
    assert refused.headers["Location"] == f"/staff/patients/{patient.patient_id}"
    with app.app_context():
        assert db.session.scalar(db.select(StaffSession.revoked_at)) is None
        stored = db.session.get(Patient, patient.patient_id)
        assert stored is not None
        patient_status.withdraw(stored, utcnow().date(), "test", utcnow(), audit.SYSTEM)
        db.session.commit()
    assert _hand_over(client, baseline).headers["Location"].startswith("/staff/patients/")
    assert patient_session.LINK_KEY not in _session(client)


def test_the_button_shows_only_for_an_answerable_assessment(
    app: Flask, client: FlaskClient, patient: factories.Enrolled
) -> None:
    factories.staff_user(app)
    factories.sign_in(client, NURSE)
    baseline, *later = _assessment_ids(app, patient.patient_id)
    page = client.get(f"/staff/patients/{patient.patient_id}").text
    assert f'action="/staff/assessments/{baseline}/tablet"' in page
    for other in later:
        assert f'action="/staff/assessments/{other}/tablet"' not in page
