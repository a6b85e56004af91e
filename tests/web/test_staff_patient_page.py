"""The patient page: header, contacts for site staff only, schedule, messages, charts, audit."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from pro_app.extensions import db
from pro_app.models import Patient
from pro_app.models.types import utcnow
from pro_app.services import audit, patient_status
from tests import factories
from tests.web.test_staff_worklist import complete_baseline, fail_link_message, signed_in

NURSE = "nurse@mi01.example.org"


def test_header_schedule_and_contacts_for_the_site_nurse(app: Flask, client: FlaskClient) -> None:
    enrolled = factories.enrol(app, "MI01-0001", mobile="347 123 4567", birth_year=1960)
    signed_in(app, client)
    page = client.get(f"/staff/patients/{enrolled.patient_id}")
    assert page.status_code == 200
    html = page.text
    for text in ("MI01-0001", "Systemic therapy + TAE", "Baseline", "Month 3", "Month 6",
                 "mi01-0001@example.org", "1960", "active"):  # fmt: skip
        assert text in html, text
    assert "347" in html  # the mobile number, in whatever format it was stored
    assert "Contact details" in html


def test_analyst_sees_no_contact_details(app: Flask, client: FlaskClient) -> None:
    enrolled = factories.enrol(app, "MI01-0001", mobile="347 123 4567", birth_year=1960)
    fail_link_message(app, enrolled.patient_id)
    signed_in(app, client, "analyst@example.org", "analyst", None)
    page = client.get(f"/staff/patients/{enrolled.patient_id}")
    assert page.status_code == 200
    html = page.text.replace("analyst@example.org", "")
    assert "@example.org" not in html
    assert "1234567" not in re.sub(r"\D", "", html)
    assert "1960" not in html
    assert "Contact details" not in html
    assert "SMTP 550 mailbox unavailable" in html  # delivery problems, yes; addresses, no
    assert "<form" not in html.split("<main", 1)[1]  # no action of any kind


def test_other_sites_patients_do_not_exist(app: Flask, client: FlaskClient) -> None:
    mine = factories.enrol(app, "TO01-0001", site_code="TO01")
    theirs = factories.enrol(app, "MI01-0001")
    signed_in(app, client, "nurse@to01.example.org", "nurse", "TO01")
    assert client.get(f"/staff/patients/{mine.patient_id}").status_code == 200
    assert client.get(f"/staff/patients/{theirs.patient_id}").status_code == 404
    assert client.get("/staff/patients/999999").status_code == 404


def test_messages_with_status_and_error(app: Flask, client: FlaskClient) -> None:
    enrolled = factories.enrol(app, "MI01-0001")
    fail_link_message(app, enrolled.patient_id)
    signed_in(app, client)
    html = client.get(f"/staff/patients/{enrolled.patient_id}").text
    messages = html[html.index('id="messages-heading"') : html.index('id="audit-heading"')]
    assert "invitation" in messages
    assert "reminder 1" in messages
    assert "link" in messages
    assert "failed" in messages
    assert "SMTP 550 mailbox unavailable" in messages


def test_score_charts_with_reference_line_and_table(app: Flask, client: FlaskClient) -> None:
    enrolled = factories.enrol(app, "MI01-0001")
    complete_baseline(app, enrolled.patient_id)
    signed_in(app, client)
    html = client.get(f"/staff/patients/{enrolled.patient_id}").text
    scores = html[html.index('id="scores-heading"') : html.index('id="messages-heading"')]
    assert scores.count("<svg") == 6  # QL2 PF2 FA SUMSC, and two GI.NET21 scales
    assert scores.count('class="chart-reference"') >= 4
    assert 'stroke-dasharray="5 4"' in scores
    assert "provisional scoring" in scores
    assert "<caption>" in scores
    assert '<th scope="row">' in scores
    # QL2 with answers 5 and 6: (5.5 - 1) / 6 * 100 = 75 at baseline, nothing later.
    ql2_row = scores[scores.index("(QL2)</th>") :]
    ql2_row = ql2_row[: ql2_row.index("</tr>")]
    assert re.findall(r'<td class="number">([^<]*)</td>', ql2_row) == ["75", "—", "—"]
    assert "<script" not in scores
    assert 'style="' not in html


def test_completed_assessment_shows_when_and_how(app: Flask, client: FlaskClient) -> None:
    enrolled = factories.enrol(app, "MI01-0001")
    complete_baseline(app, enrolled.patient_id)
    signed_in(app, client)
    html = client.get(f"/staff/patients/{enrolled.patient_id}").text
    schedule = html[html.index('id="schedule-heading"') : html.index('id="scores-heading"')]
    assert "completed" in schedule
    assert "own device" in schedule
    assert "demo" in schedule  # the text pack the patient saw


def test_audit_trail_newest_first_with_who_and_reason(app: Flask, client: FlaskClient) -> None:
    enrolled = factories.enrol(app, "MI01-0001")
    nurse_id = factories.staff_user(app, NURSE, "nurse", "MI01", language="en")
    with app.app_context():
        patient = db.session.get(Patient, enrolled.patient_id)
        assert patient is not None
        patient_status.set_reminders_paused(
            patient, True, utcnow(), audit.Actor.staff(nurse_id), reason="on holiday"
        )
        db.session.commit()
    assert factories.sign_in(client, NURSE).status_code == 302
    html = client.get(f"/staff/patients/{enrolled.patient_id}").text
    trail = html[html.index('id="audit-heading"') :]
    actions = re.findall(r"<code>([a-z_.]+)</code>", trail)
    assert actions[0] == "patient.reminders_paused"
    assert {"patient.enroll", "link.issue"} <= set(actions)
    assert actions.index("patient.reminders_paused") < actions.index("patient.enroll")
    assert "on holiday" in trail
    assert "Nurse" in trail
    assert "system" in trail
    assert "reminders_paused: False → True" in trail


def test_audit_trail_of_this_patient_only(app: Flask, client: FlaskClient) -> None:
    first = factories.enrol(app, "MI01-0001")
    other = factories.enrol(app, "MI01-0002")
    complete_baseline(app, other.patient_id)
    signed_in(app, client)
    html = client.get(f"/staff/patients/{first.patient_id}").text
    trail = html[html.index('id="audit-heading"') :]
    assert "assessment.submit" not in trail
    assert "answers.save" not in trail
    other_html = client.get(f"/staff/patients/{other.patient_id}").text
    assert "assessment.submit" in other_html[other_html.index('id="audit-heading"') :]


def test_withdrawn_patient(app: Flask, client: FlaskClient) -> None:
    enrolled = factories.enrol(app, "MI01-0001")
    with app.app_context():
        patient = db.session.get(Patient, enrolled.patient_id)
        assert patient is not None
        patient_status.withdraw(
            patient, patient.randomized_on, "moved away", utcnow(), audit.SYSTEM
        )
        db.session.commit()
    signed_in(app, client)
    html = client.get(f"/staff/patients/{enrolled.patient_id}").text
    assert "withdrawn" in html
    assert "moved away" in html
    assert "not done" in html
