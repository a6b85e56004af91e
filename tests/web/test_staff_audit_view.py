"""The audit trail page and its CSV: scoped by site, filtered, no contact details, safe cells."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from flask import Flask
from flask.testing import FlaskClient

from pro_app.extensions import db
from pro_app.models import AuditEvent, Patient, Site
from pro_app.services import audit
from tests import factories


def _signed_in(app: Flask, email: str, role: str, site_code: str | None) -> FlaskClient:
    client = app.test_client()
    factories.staff_user(app, email, role, site_code, language="en")
    factories.sign_in(client, email)
    return client


def _two_sites(app: Flask) -> tuple[int, int]:
    """A patient at MI01 and one at RM01 (their enrolment is audited); their ids."""
    milan = factories.enrol(app, "MI01-0001", site_code="MI01")
    rome = factories.enrol(app, "RM01-0001", site_code="RM01")
    return milan.patient_id, rome.patient_id


def _event_count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count(AuditEvent.id))) or 0


def test_investigator_sees_only_own_site_and_admin_sees_all(app: Flask) -> None:
    milan_id, _rome_id = _two_sites(app)
    investigator = _signed_in(app, "investigator@mi01.example.org", "investigator", "MI01")
    page = investigator.get("/staff/audit")
    assert page.status_code == 200
    assert "MI01-0001" in page.text
    assert "RM01-0001" not in page.text
    assert "patient.enroll" in page.text
    # Another site's patient cannot be asked for, by id or by code.
    with app.app_context():
        rome_id = db.session.scalar(db.select(Patient.id).where(Patient.study_code == "RM01-0001"))
    assert investigator.get(f"/staff/audit?patient_id={rome_id}").status_code == 404
    by_code = investigator.get("/staff/audit?study_code=RM01-0001")
    assert by_code.status_code == 200
    assert "No patient of your site has this study code." in by_code.text
    assert "RM01-0001</span>" not in by_code.text
    export = investigator.get("/staff/audit.csv")
    assert "MI01-0001" in export.text
    assert "RM01-0001" not in export.text
    admin = _signed_in(app, "admin@example.org", "admin", None)
    everything = admin.get("/staff/audit")
    assert "MI01-0001" in everything.text
    assert "RM01-0001" in everything.text
    assert admin.get(f"/staff/audit?patient_id={milan_id}").status_code == 200


def test_nurses_and_analysts_have_no_audit_pages(app: Flask) -> None:
    nurse = _signed_in(app, "nurse@mi01.example.org", "nurse", "MI01")
    analyst = _signed_in(app, "analyst@example.org", "analyst", None)
    for client in (nurse, analyst):
        assert client.get("/staff/audit").status_code == 403
        assert client.get("/staff/audit.csv").status_code == 403


def test_filters_by_patient_action_and_dates(app: Flask) -> None:
    milan_id, _rome_id = _two_sites(app)
    factories.enrol(app, "MI01-0002", site_code="MI01")
    client = _signed_in(app, "investigator@mi01.example.org", "investigator", "MI01")
    one = client.get("/staff/audit", query_string={"study_code": "mi01-0001"})
    assert "MI01-0001" in one.text
    assert "MI01-0002" not in one.text
    by_id = client.get("/staff/audit", query_string={"patient_id": milan_id})
    assert "MI01-0001" in by_id.text
    assert "MI01-0002" not in by_id.text
    issued = client.get("/staff/audit", query_string={"action": "link.issue"})
    assert "link.issue</code>" in issued.text
    assert "patient.enroll</code>" not in issued.text
    future = client.get("/staff/audit", query_string={"date_from": "2099-01-01"})
    assert "0 events" in future.text
    reversed_range = client.get(
        "/staff/audit", query_string={"date_from": "2026-02-01", "date_to": "2026-01-01"}
    )
    assert reversed_range.status_code == 400
    assert "The end date is before the start date." in reversed_range.text
    assert client.get("/staff/audit", query_string={"date_from": "<script>"}).status_code == 400
    assert client.get("/staff/audit", query_string={"action": "nope"}).status_code == 400


def test_times_are_italian_and_pages_are_newest_first(app: Flask) -> None:
    factories.site(app, "MI01")
    with app.app_context():
        site_id = db.session.scalar(db.select(Site.id))
        for minute in range(55):
            db.session.add(
                AuditEvent(
                    occurred_at=datetime(2026, 1, 15, 10, minute, tzinfo=UTC),
                    actor_type="system",
                    action="test.event",
                    entity_type="site",
                    entity_id=str(site_id),
                    site_id=site_id,
                    after={"n": minute},
                )
            )
        db.session.commit()
    client = _signed_in(app, "investigator@mi01.example.org", "investigator", "MI01")
    first = client.get("/staff/audit", query_string={"action": "test.event"})
    assert "55 events" in first.text
    assert "15/01/2026 11:54:00" in first.text  # 10:54 UTC is 11:54 in Rome in winter
    assert first.text.index("11:54:00") < first.text.index("11:53:00")
    assert "11:04:00" not in first.text
    assert "page=2" in first.text
    second = client.get("/staff/audit", query_string={"action": "test.event", "page": 2})
    assert "11:04:00" in second.text
    assert "11:00:00" in second.text


def test_csv_export_neutralises_formulas_and_hides_contacts(app: Flask) -> None:
    milan_id, _rome_id = _two_sites(app)
    with app.app_context():
        patient = db.session.get(Patient, milan_id)
        # A careless future caller: the trail view still must not show contact details.
        audit.record(
            audit.SYSTEM,
            "patient.note",
            patient,
            site_id=patient.site_id,
            before={"email": "mi01-0001@example.org"},
            after={"note": "+39 333", "Mobile": "3331234567"},
            reason="=cmd|' /C calc'!A0",
        )
        db.session.commit()
    client = _signed_in(app, "investigator@mi01.example.org", "investigator", "MI01")
    before = _event_count(app)
    response = client.get("/staff/audit.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    text = response.get_data().decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0].keys() >= {"occurred_at_utc", "actor", "action", "before", "after", "reason"}
    note = next(row for row in rows if row["action"] == "patient.note")
    assert note["reason"] == "'=cmd|' /C calc'!A0"
    assert note["study_code"] == "MI01-0001"
    assert "example.org" not in text
    assert "3331234567" not in text
    assert "[hidden]" in note["before"]
    page = client.get("/staff/audit")
    assert "example.org" not in page.text
    assert "3331234567" not in page.text
    assert _event_count(app) == before  # reading the trail writes nothing


def test_who_did_it(app: Flask) -> None:
    factories.staff_user(app, "nurse@mi01.example.org", "nurse", "MI01")
    patient = factories.enrol(app, "MI01-0001")
    nurse = app.test_client()
    factories.sign_in(nurse, "nurse@mi01.example.org")  # a staff event
    factories.open_link(app.test_client(), patient)  # a patient-link event
    client = _signed_in(app, "investigator@mi01.example.org", "investigator", "MI01")
    page = client.get("/staff/audit")
    assert "<td>Nurse</td>" in page.text  # the staff member's name
    assert "<td>patient link (MI01-0001)</td>" in page.text
    assert "<td>system</td>" in page.text  # enrolment by the factory, not by a person
