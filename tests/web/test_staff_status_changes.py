"""Status changes from the staff workspace: withdraw, death, reminders, randomization, not done."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask, g, render_template
from flask.testing import FlaskClient

from pro_app.extensions import db
from pro_app.models import (
    Assessment,
    AssessmentStatus,
    AuditEvent,
    Message,
    MessageStatus,
    Patient,
    PatientStatus,
    StaffUser,
)
from pro_app.models.types import utcnow
from pro_app.services.dispatch import dispatch_due_messages
from pro_app.services.senders import senders
from tests import factories

ROME = ZoneInfo("Europe/Rome")
NURSE = "nurse@mi01.example.org"
SCRIPT = "<script>alert(1)</script>"


def today() -> date:
    return datetime.now(ROME).date()


def enrol(app: Flask, code: str = "MI01-0001", days: int = 10, **kwargs: Any) -> int:
    return factories.enrol(app, code, days_since_randomization=days, **kwargs).patient_id


def sign_in_as(
    app: Flask, client: FlaskClient, role: str = "nurse", site: str | None = "MI01"
) -> int:
    email = f"{role}@{(site or 'all').lower()}.example.org"
    user_id = factories.staff_user(app, email, role, site, language="en")
    assert factories.sign_in(client, email).status_code == 302
    return user_id


def assessment_id(app: Flask, patient_id: int, timepoint: str) -> int:
    with app.app_context():
        found = db.session.scalar(
            db.select(Assessment.id).where(
                Assessment.patient_id == patient_id, Assessment.timepoint == timepoint
            )
        )
        assert found is not None
        return found


def actions(app: Flask, patient_id: int) -> dict[str, tuple[str, dict[str, str]]]:
    """Every action: its path and a valid form."""
    with app.app_context():
        patient = db.session.get(Patient, patient_id)
        assert patient is not None
        randomized_on = patient.randomized_on
    month3 = assessment_id(app, patient_id, "month3")
    base = f"/staff/patients/{patient_id}"
    return {
        "withdraw": (f"{base}/withdraw", {"on": today().isoformat(), "reason": "Moved abroad"}),
        "death": (f"{base}/death", {"on": today().isoformat()}),
        "reminders": (f"{base}/reminders", {"action": "pause", "reason": "In hospital"}),
        "randomization": (
            f"{base}/randomization",
            {"new_date": (randomized_on - timedelta(days=2)).isoformat(), "reason": "CRF typo"},
        ),
        "not_done": (f"/staff/assessments/{month3}/not-done", {"reason": "Too unwell"}),
    }


def post(client: FlaskClient, path: str, data: dict[str, str]):  # type: ignore[no-untyped-def]
    """Open the form, then send it with its CSRF token, as a browser does."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    return client.post(path, data={"csrf_token": factories.csrf_token(page.text), **data})


def snapshot(app: Flask) -> dict[str, Any]:
    """Everything a status change could touch."""
    with app.app_context():
        return {
            "patients": sorted(
                (
                    p.id,
                    p.status,
                    p.randomized_on,
                    p.is_reminders_paused,
                    p.withdrawn_on,
                    p.withdrawal_reason,
                    p.died_on,
                )
                for p in db.session.scalars(db.select(Patient))
            ),
            "assessments": sorted(
                (
                    a.id,
                    a.status,
                    a.target_on,
                    a.window_opens_on,
                    a.window_closes_on,
                    a.not_done_reason,
                )
                for a in db.session.scalars(db.select(Assessment))
            ),
            "messages": sorted(
                (m.id, m.status, m.scheduled_for) for m in db.session.scalars(db.select(Message))
            ),
            "audit": db.session.scalar(db.select(db.func.count()).select_from(AuditEvent)),
        }


def flashes(client: FlaskClient) -> list[tuple[str, str]]:
    with client.session_transaction() as session:
        return list(session.get("_flashes", []))


def audit_events(app: Flask, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == action)))


def pending_count(app: Flask, patient_id: int) -> int:
    with app.app_context():
        return (
            db.session.scalar(
                db.select(db.func.count())
                .select_from(Message)
                .where(Message.patient_id == patient_id, Message.status == MessageStatus.PENDING)
            )
            or 0
        )


# --- happy paths ---------------------------------------------------------------------------


def test_withdraw(app: Flask, client: FlaskClient) -> None:
    patient_id = enrol(app)
    nurse_id = sign_in_as(app, client)
    assert pending_count(app, patient_id) > 0
    path, data = actions(app, patient_id)["withdraw"]

    response = post(client, path, data)

    assert response.status_code == 302
    assert response.headers["Location"] == f"/staff/patients/{patient_id}"
    assert flashes(client) == [
        (
            "success",
            "MI01-0001 has been withdrawn from the study; no further messages will be sent.",
        )
    ]
    with app.app_context():
        patient = db.session.get(Patient, patient_id)
        assert patient is not None
        assert patient.status == PatientStatus.WITHDRAWN
        assert patient.withdrawn_on == today()
        assert patient.withdrawal_reason == "Moved abroad"
        statuses = set(
            db.session.scalars(
                db.select(Assessment.status).where(Assessment.patient_id == patient_id)
            )
        )
        assert AssessmentStatus.SCHEDULED not in statuses
    assert pending_count(app, patient_id) == 0
    [event] = audit_events(app, "patient.withdrawn")
    assert event.actor_id == str(nurse_id)
    assert event.reason == "Moved abroad"


def test_record_death(app: Flask, client: FlaskClient) -> None:
    patient_id = enrol(app)
    sign_in_as(app, client, "investigator")
    path, data = actions(app, patient_id)["death"]

    response = post(client, path, data)

    assert response.status_code == 302
    assert flashes(client)[0][0] == "success"
    with app.app_context():
        patient = db.session.get(Patient, patient_id)
        assert patient is not None
        assert (patient.status, patient.died_on) == (PatientStatus.DECEASED, today())
    assert pending_count(app, patient_id) == 0
    assert len(audit_events(app, "patient.deceased")) == 1


def test_pause_and_resume_reminders(app: Flask, client: FlaskClient) -> None:
    patient_id = enrol(app, days=0)
    sign_in_as(app, client)
    path, data = actions(app, patient_id)["reminders"]
    planned = pending_count(app, patient_id)
    assert planned > 0
    assert 'name="action" type="hidden" value="pause"' in client.get(path).text

    assert post(client, path, data).status_code == 302
    assert flashes(client) == [("success", "The reminders of MI01-0001 are paused.")]
    assert pending_count(app, patient_id) == 0
    [paused] = audit_events(app, "patient.reminders_paused")
    assert paused.reason == "In hospital"

    page = client.get(path)
    assert 'value="resume"' in page.text
    assert "Resume the reminders" in page.text
    assert post(client, path, {"action": "resume"}).status_code == 302
    assert pending_count(app, patient_id) == planned
    assert len(audit_events(app, "patient.reminders_resumed")) == 1


def test_correct_randomization(app: Flask, client: FlaskClient) -> None:
    patient_id = enrol(app, days=10)
    sign_in_as(app, client, "investigator")
    path, data = actions(app, patient_id)["randomization"]
    before = snapshot(app)

    response = post(client, path, data)

    assert response.status_code == 302
    [(category, message)] = flashes(client)
    assert category == "success"
    assert "Moved: Month 3, Month 6." in message
    with app.app_context():
        patient = db.session.get(Patient, patient_id)
        assert patient is not None
        assert patient.randomized_on == today() - timedelta(days=12)
        month3 = db.session.get(Assessment, assessment_id(app, patient_id, "month3"))
        assert month3 is not None
        assert month3.target_on == today() - timedelta(days=12) + timedelta(days=91)
    assert snapshot(app)["messages"] != before["messages"]
    [event] = audit_events(app, "patient.correct_randomization")
    assert event.reason == "CRF typo"


def test_mark_not_done(app: Flask, client: FlaskClient) -> None:
    patient_id = enrol(app, days=0)
    sign_in_as(app, client)
    baseline = assessment_id(app, patient_id, "baseline")
    path = f"/staff/assessments/{baseline}/not-done"
    assert "Baseline" in client.get(path).text

    response = post(client, path, {"reason": "Too unwell to answer"})

    assert response.status_code == 302
    assert flashes(client) == [("success", "“Baseline” of MI01-0001 is marked as not done.")]
    with app.app_context():
        assessment = db.session.get(Assessment, baseline)
        assert assessment is not None
        assert assessment.status == AssessmentStatus.NOT_DONE
        assert assessment.not_done_reason == "Too unwell to answer"
        by_assessment = Counter(
            m.assessment_id
            for m in db.session.scalars(
                db.select(Message).where(Message.status == MessageStatus.PENDING)
            )
        )
    assert by_assessment[baseline] == 0
    assert by_assessment[assessment_id(app, patient_id, "month3")] > 0
    [event] = audit_events(app, "assessment.not_done")
    assert event.before == {"status": "scheduled"}
    assert event.reason == "Too unwell to answer"


def test_admin_may_act_on_any_site(app: Flask, client: FlaskClient) -> None:
    patient_id = enrol(app)
    sign_in_as(app, client, "admin", None)
    path, data = actions(app, patient_id)["death"]
    assert post(client, path, data).status_code == 302


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "changes", "field", "message"),
    [
        ("withdraw", {"on": ""}, "on", "Enter the date."),
        ("withdraw", {"on": "31/02/2026"}, "on", "Enter a valid date"),
        ("withdraw", {"on": "tomorrow"}, "on", "Enter a valid date"),
        ("withdraw", {"reason": "  "}, "reason", "Give the reason"),
        ("withdraw", {"reason": "x" * 501}, "reason", "At most 500 characters (now 501)."),
        ("withdraw", {"on": "future"}, "on", "The date cannot be in the future."),
        ("withdraw", {"on": "before"}, "on", "The date cannot be before randomization."),
        ("death", {"on": ""}, "on", "Enter the date."),
        ("death", {"on": "future"}, "on", "The date cannot be in the future."),
        ("death", {"on": "before"}, "on", "The date cannot be before randomization."),
        ("reminders", {"reason": "x" * 501}, "reason", "At most 500 characters"),
        ("randomization", {"new_date": ""}, "new_date", "Enter the date."),
        ("randomization", {"new_date": "future"}, "new_date", "cannot be in the future"),
        ("randomization", {"new_date": "ancient"}, "new_date", "more than a year before enrolment"),
        ("randomization", {"new_date": "same"}, "new_date", "already the randomization date"),
        ("randomization", {"reason": ""}, "reason", "Give the reason"),
        ("randomization", {"reason": "x" * 501}, "reason", "At most 500 characters"),
        ("not_done", {"reason": ""}, "reason", "Give the reason"),
        ("not_done", {"reason": "x" * 501}, "reason", "At most 500 characters"),
    ],
)
def test_bad_input_is_refused_at_the_field(
    app: Flask, client: FlaskClient, action: str, changes: dict[str, str], field: str, message: str
) -> None:
    patient_id = enrol(app)
    sign_in_as(app, client)
    path, data = actions(app, patient_id)[action]
    with app.app_context():
        patient = db.session.get(Patient, patient_id)
        assert patient is not None
        named_dates = {
            "future": today() + timedelta(days=1),
            "before": patient.randomized_on - timedelta(days=1),
            "ancient": today() - timedelta(days=400),
            "same": patient.randomized_on,
        }
    data = {
        **data,
        **{k: named_dates[v].isoformat() if v in named_dates else v for k, v in changes.items()},
    }
    before = snapshot(app)

    response = post(client, path, data)

    assert response.status_code == 400
    html = response.text
    error_at = html.find(f'id="{field}-error"')
    assert error_at > 0, html
    assert message in html[error_at : html.find("</span>", error_at)]
    assert f'aria-describedby="{field}-hint {field}-error"' in html or (
        f'aria-describedby="{field}-error"' in html
    )
    assert 'aria-invalid="true"' in html
    assert snapshot(app) == before
    assert flashes(client) == []


def test_messages_in_italian(app: Flask, client: FlaskClient) -> None:
    patient_id = enrol(app)
    factories.staff_user(app, NURSE, "nurse", "MI01", language="it")
    factories.sign_in(client, NURSE)
    path, data = actions(app, patient_id)["withdraw"]

    response = post(client, path, {**data, "on": (today() + timedelta(days=1)).isoformat()})

    assert response.status_code == 400
    assert 'lang="it"' in response.text
    assert "La data non può essere nel futuro." in response.text


def test_script_text_is_stored_as_text_and_shown_escaped(app: Flask, client: FlaskClient) -> None:
    patient_id = enrol(app)
    sign_in_as(app, client)
    path, data = actions(app, patient_id)["withdraw"]

    refused = post(client, path, {"on": "2999-01-01", "reason": SCRIPT})
    assert refused.status_code == 400
    assert SCRIPT not in refused.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in refused.text

    assert post(client, path, {**data, "reason": SCRIPT}).status_code == 302
    with app.app_context():
        patient = db.session.get(Patient, patient_id)
        assert patient is not None
        assert patient.withdrawal_reason == SCRIPT
        html = render_fragment(app, patient, "nurse")
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    if app.view_functions["staff.patient"].__module__ != __name__:  # the real patient page
        page = client.get(f"/staff/patients/{patient_id}")
        assert page.status_code == 200
        assert SCRIPT not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_already_withdrawn(app: Flask, client: FlaskClient) -> None:
    patient_id = enrol(app)
    sign_in_as(app, client)
    paths = actions(app, patient_id)
    path, data = paths["withdraw"]
    assert post(client, path, data).status_code == 302
    flashes(client)
    before = snapshot(app)

    page = client.get(path)
    assert page.status_code == 200
    assert "This patient is no longer followed." in page.text
    assert '<form method="post" novalidate' not in page.text
    token = factories.csrf_token(page.text)  # the sign-out form's
    for action in ("withdraw", "death", "reminders", "randomization"):
        action_path, action_data = paths[action]
        again = client.post(action_path, data={"csrf_token": token, **action_data})
        assert again.status_code == 400, action
        assert "This patient is no longer followed." in again.text
    assert snapshot(app) == before


def test_pausing_twice_is_refused(app: Flask, client: FlaskClient) -> None:
    patient_id = enrol(app)
    sign_in_as(app, client)
    path, data = actions(app, patient_id)["reminders"]
    page = client.get(path)
    token = factories.csrf_token(page.text)
    assert client.post(path, data={"csrf_token": token, **data}).status_code == 302
    before = snapshot(app)

    again = client.post(path, data={"csrf_token": token, **data})  # a double click

    assert again.status_code == 400
    assert "The reminders are already paused." in again.text
    assert snapshot(app) == before


def test_completed_assessment_cannot_be_not_done(app: Flask, client: FlaskClient) -> None:
    patient_id = enrol(app, days=0)
    baseline = assessment_id(app, patient_id, "baseline")
    with app.app_context():
        assessment = db.session.get(Assessment, baseline)
        assert assessment is not None
        assessment.status, assessment.completed_at = AssessmentStatus.COMPLETED, utcnow()
        db.session.commit()
    sign_in_as(app, client)
    path = f"/staff/assessments/{baseline}/not-done"
    page = client.get(path)
    assert "cannot be marked as not done" in page.text
    before = snapshot(app)

    response = client.post(
        path, data={"csrf_token": factories.csrf_token(page.text), "reason": "Lost"}
    )

    assert response.status_code == 400
    assert snapshot(app) == before


# --- access --------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["withdraw", "death", "reminders", "randomization", "not_done"])
def test_analyst_is_forbidden(app: Flask, client: FlaskClient, action: str) -> None:
    patient_id = enrol(app)
    sign_in_as(app, client, "analyst", None)
    path, data = actions(app, patient_id)[action]
    before = snapshot(app)
    token = factories.csrf_token(client.get("/auth/sign-in", follow_redirects=True).text)

    assert client.get(path).status_code == 403
    assert client.post(path, data={"csrf_token": token, **data}).status_code == 403
    assert snapshot(app) == before


@pytest.mark.parametrize("action", ["withdraw", "death", "reminders", "randomization", "not_done"])
def test_other_site_does_not_exist(app: Flask, client: FlaskClient, action: str) -> None:
    patient_id = enrol(app)
    sign_in_as(app, client, "nurse", "RM01")
    path, data = actions(app, patient_id)[action]
    before = snapshot(app)
    token = factories.csrf_token(client.get("/auth/sign-in", follow_redirects=True).text)

    assert client.get(path).status_code == 404
    assert client.post(path, data={"csrf_token": token, **data}).status_code == 404
    assert snapshot(app) == before


def test_unknown_assessment_is_404(app: Flask, client: FlaskClient) -> None:
    sign_in_as(app, client)
    assert client.get("/staff/assessments/999999/not-done").status_code == 404


def test_signed_out_goes_to_sign_in(app: Flask, client: FlaskClient) -> None:
    patient_id = enrol(app)
    response = client.get(f"/staff/patients/{patient_id}/withdraw")
    assert response.status_code == 302
    assert "/auth/sign-in" in response.headers["Location"]


@pytest.mark.parametrize("action", ["withdraw", "death", "reminders", "randomization", "not_done"])
def test_post_without_csrf_is_refused(app: Flask, client: FlaskClient, action: str) -> None:
    patient_id = enrol(app)
    sign_in_as(app, client)
    path, data = actions(app, patient_id)[action]
    before = snapshot(app)

    assert client.post(path, data=data).status_code == 400
    assert client.post(path, data={**data, "csrf_token": "forged"}).status_code == 400
    assert snapshot(app) == before


def test_get_writes_nothing(app: Flask, client: FlaskClient) -> None:
    patient_id = enrol(app)
    sign_in_as(app, client)
    paths = actions(app, patient_id)
    before = snapshot(app)

    for path, data in paths.values():
        assert client.get(path, query_string=data).status_code == 200

    assert snapshot(app) == before


# --- the fragment on the patient page ------------------------------------------------------


def render_fragment(app: Flask, patient: Patient, role: str) -> str:
    """The patient page's status block as this role would see it."""
    user = db.session.scalar(db.select(StaffUser).where(StaffUser.role == role))
    if user is None:
        factories.staff_user(
            app,
            f"{role}-view@example.org",
            role,
            "MI01" if role in ("nurse", "investigator") else None,
            "en",
        )
        user = db.session.scalar(db.select(StaffUser).where(StaffUser.role == role))
    with app.test_request_context("/"):
        g._login_user = user
        return render_template("staff/_patient_status_actions.html", patient=patient)


def test_fragment_shows_what_applies(app: Flask) -> None:
    patient_id = enrol(app)
    with app.app_context():
        patient = db.session.get(Patient, patient_id)
        assert patient is not None
        active = render_fragment(app, patient, "nurse")
        assert f"/staff/patients/{patient_id}/withdraw" in active
        assert f"/staff/patients/{patient_id}/death" in active
        assert f"/staff/patients/{patient_id}/randomization" in active
        assert f"/staff/patients/{patient_id}/reminders" in active
        assert render_fragment(app, patient, "analyst").strip() == ""

        patient.status, patient.died_on = PatientStatus.DECEASED, today()
        deceased = render_fragment(app, patient, "nurse")
        assert "/death" not in deceased
        assert "/withdraw" not in deceased
        assert "Nessun altro questionario o messaggio." in deceased
        db.session.rollback()


# --- no message after withdrawal or death ---------------------------------------------------


def test_withdrawn_or_deceased_patient_gets_no_further_message(
    app: Flask, client: FlaskClient
) -> None:
    withdrawn = enrol(app, "MI01-0001", days=0)
    deceased = enrol(app, "MI01-0002", days=0)
    followed = enrol(app, "MI01-0003", days=0)
    sign_in_as(app, client)
    start = today() + timedelta(days=1)
    instants = [
        datetime.combine(start + timedelta(days=day), at, ROME)
        for day in range(200)
        for at in (time(11), time(17))
    ]

    def received() -> Counter[str]:
        with app.app_context():
            return Counter(message.to for message in senders().email.sent)

    with app.app_context():
        dispatch_due_messages(instants[0])  # everybody gets the baseline invitation
    first = received()
    assert first == Counter({f"mi01-000{n}@example.org": 1 for n in (1, 2, 3)})

    assert post(client, *actions(app, withdrawn)["withdraw"]).status_code == 302
    assert post(client, *actions(app, deceased)["death"]).status_code == 302
    for instant in instants[1:]:
        with app.app_context():
            dispatch_due_messages(instant)

    total = received()
    assert total["mi01-0001@example.org"] == 1
    assert total["mi01-0002@example.org"] == 1
    assert total["mi01-0003@example.org"] > 3  # the followed patient got the whole plan
    assert pending_count(app, withdrawn) == pending_count(app, deceased) == 0
    assert pending_count(app, followed) == 0  # the plan is over after day 196
    with app.app_context():
        assert not senders().sms.sent
