"""The personal link: GET changes nothing, invalid links look alike, the rate limit holds."""

from __future__ import annotations

import re
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func

from pro_app.extensions import db
from pro_app.models import AuditEvent, Patient, PatientLink
from pro_app.models.types import utcnow
from pro_app.services.links import issue_link
from tests import factories


def _row_counts(app: Flask) -> dict[str, int]:
    with app.app_context():
        return {
            table.name: db.session.scalar(db.select(func.count()).select_from(table)) or 0
            for table in db.metadata.sorted_tables
        }


def _without_csrf(html: str) -> str:
    return re.sub(r'value="[^"]*"', 'value=""', html)


def test_opening_the_link_writes_nothing(app: Flask, client: FlaskClient) -> None:
    enrolled = factories.enrol(app)
    before = _row_counts(app)
    for _ in range(3):
        response = client.get(enrolled.path)
        assert response.status_code == 200
        assert 'name="action" value="start"' in response.text
    assert _row_counts(app) == before
    with app.app_context():
        link = db.session.scalar(db.select(PatientLink))
        assert link is not None
        assert link.last_used_at is None


def test_start_moves_to_a_url_without_the_token(app: Flask, client: FlaskClient) -> None:
    enrolled = factories.enrol(app)
    welcome = client.get(enrolled.path)
    response = client.post(
        enrolled.path, data={"csrf_token": factories.csrf_token(welcome.text), "action": "start"}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/q"
    assert enrolled.token not in response.headers["Location"]
    page = client.get("/q")
    assert page.headers["Location"] == "/q/page/1"
    with app.app_context():
        link = db.session.scalar(db.select(PatientLink))
        assert link is not None
        assert link.last_used_at is not None
        actions = set(db.session.scalars(db.select(AuditEvent.action)))
        assert "link.open" in actions


def test_unknown_revoked_and_expired_links_are_indistinguishable(
    app: Flask, client: FlaskClient
) -> None:
    revoked = factories.enrol(app, "MI01-0001")
    expired = factories.enrol(app, "MI01-0002")
    with app.app_context():
        patient = db.session.get(Patient, revoked.patient_id)
        assert patient is not None
        issue_link(patient, utcnow())  # the first token is now revoked
        stale = db.session.scalar(
            db.select(PatientLink).where(PatientLink.patient_id == expired.patient_id)
        )
        assert stale is not None
        stale.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    unknown = factories.Enrolled(0, "", "A" * 43)
    responses = []
    for enrolled in (unknown, revoked, expired):
        welcome = client.get(enrolled.path)
        started = client.post(
            enrolled.path,
            data={"csrf_token": factories.csrf_token(welcome.text), "action": "start"},
        )
        responses.append((welcome.status_code, started.status_code, _without_csrf(started.text)))
    assert responses[0] == responses[1] == responses[2]
    assert responses[0][1] == 404
    assert "Questo link non può essere aperto" in responses[0][2]


def test_start_without_csrf_token_is_refused(app: Flask, client: FlaskClient) -> None:
    enrolled = factories.enrol(app)
    response = client.post(enrolled.path, data={"action": "start"})
    assert response.status_code == 400
    assert client.get("/q").status_code == 401


def test_patient_language_is_used_from_the_first_page(app: Flask, client: FlaskClient) -> None:
    enrolled = factories.enrol(app, language="en")
    welcome = client.get(enrolled.path, headers={"Accept-Language": "it"})
    assert '<html lang="en">' in welcome.text
    assert "Welcome" in welcome.text
