"""Giving the link: the link page with its QR code, sending now, re-issuing, the printed letter."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date
from flask import Flask
from flask.testing import FlaskClient

from pro_app.extensions import db
from pro_app.models import Assessment, AuditEvent, Message, PatientLink
from pro_app.models.types import utcnow
from pro_app.services.senders import senders
from pro_app.staff import link_pages
from tests import factories

NURSE = "nurse@mi01.example.org"
ROME = ZoneInfo("Europe/Rome")
PAGES = ("/link", "/letter")
POSTS = ("/send-link", "/reissue-link")


def daytime_today() -> datetime:
    """11:00 in Rome today: never in the patients' quiet hours."""
    today = utcnow().astimezone(ROME)
    return today.replace(hour=11, minute=0, second=0, microsecond=0)


@pytest.fixture(autouse=True)
def clinic_hours(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """The link pages act at 11:00 Rome time, whenever the tests run."""
    now = daytime_today()
    monkeypatch.setattr(link_pages, "utcnow", lambda: now)
    return now


@pytest.fixture
def nurse(app: Flask, client: FlaskClient) -> int:
    user_id = factories.staff_user(app, NURSE, language="en")
    assert factories.sign_in(client, NURSE).status_code == 302
    return user_id


@pytest.fixture
def patient(app: Flask) -> factories.Enrolled:
    return factories.enrol(app, "MI01-0007", mobile="3471234567", birth_year=1950)


def counts(app: Flask) -> tuple[int, int, int]:
    with app.app_context():
        return tuple(  # type: ignore[return-value]
            db.session.scalar(db.select(db.func.count()).select_from(model)) or 0
            for model in (PatientLink, Message, AuditEvent)
        )


def token_in(html: str) -> str:
    match = re.search(r"https://pro\.example\.test/p/([A-Za-z0-9_-]+)", html)
    assert match, "no link on the page"
    return match.group(1)


def post(client: FlaskClient, patient_id: int, action: str, **data: str):  # type: ignore[no-untyped-def]
    page = client.get(f"/staff/patients/{patient_id}/link")
    token = factories.csrf_token(page.text)
    return client.post(f"/staff/patients/{patient_id}{action}", data={"csrf_token": token, **data})


def link_opens(app: Flask, token: str) -> bool:
    """Whether a fresh browser can start the questionnaire with this token."""
    browser = app.test_client()
    welcome = browser.get(f"/p/{token}")
    started = browser.post(
        f"/p/{token}",
        data={
            "csrf_token": factories.csrf_token(welcome.text),
            "action": "start",
            "birth_year": "1950",
        },
    )
    return started.status_code == 302


def test_link_page_shows_the_link_and_its_qr_code(
    app: Flask, client: FlaskClient, nurse: int, patient: factories.Enrolled
) -> None:
    before = counts(app)
    page = client.get(f"/staff/patients/{patient.patient_id}/link")

    assert page.status_code == 200
    assert token_in(page.text) == patient.token
    assert re.search(
        r'<svg role="img" focusable="false" viewBox="[^"]+" class="qr-code">', page.text
    )
    assert "<title>QR code of the personal link</title>" in page.text
    assert "mi01-0007@example.org" in page.text  # site staff see where it goes
    assert counts(app) == before  # GET changes nothing


def test_send_link_by_email_delivers_a_link_that_opens(
    app: Flask, client: FlaskClient, nurse: int, patient: factories.Enrolled
) -> None:
    response = post(client, patient.patient_id, "/send-link", channel="email")

    assert response.status_code == 302
    with app.app_context():
        sent = senders().email.sent  # type: ignore[attr-defined]
        assert [mail.to for mail in sent] == ["mi01-0007@example.org"]
        token = token_in(sent[0].text)
        message = db.session.scalar(db.select(Message).where(Message.kind == "link"))
        assert message is not None
        assert message.status == "sent"
        assert db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "link.send"))
    assert token == patient.token
    assert "The link was sent by e-mail." in client.get(response.headers["Location"]).text
    welcome = app.test_client().get(f"/p/{token}")
    assert 'name="action" value="start"' in welcome.text
    assert link_opens(app, token)


def test_send_link_by_sms(
    app: Flask, client: FlaskClient, nurse: int, patient: factories.Enrolled
) -> None:
    response = post(client, patient.patient_id, "/send-link", channel="sms")

    assert response.status_code == 302
    with app.app_context():
        sent = senders().sms.sent  # type: ignore[attr-defined]
        assert [sms.to for sms in sent] == ["+393471234567"]
        assert patient.token in sent[0].text
    assert "The link was sent by text message." in client.get(response.headers["Location"]).text


def test_send_in_quiet_hours_waits_and_says_when(
    app: Flask,
    client: FlaskClient,
    nurse: int,
    patient: factories.Enrolled,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    night = daytime_today().replace(hour=22)
    monkeypatch.setattr(link_pages, "utcnow", lambda: night)

    response = post(client, patient.patient_id, "/send-link", channel="email")

    page = client.get(response.headers["Location"]).text
    assert "It is quiet time for the patient: the message will go out at" in page
    with app.app_context():
        assert senders().email.sent == []  # type: ignore[attr-defined]
        message = db.session.scalar(db.select(Message).where(Message.kind == "link"))
        assert message is not None
        assert message.status == "pending"
        assert message.next_attempt_at.astimezone(ROME).hour == 9


def test_send_without_a_contact_for_the_channel_is_refused(
    app: Flask, client: FlaskClient, nurse: int
) -> None:
    enrolled = factories.enrol(app, "MI01-0008")  # e-mail only
    before = counts(app)

    response = post(client, enrolled.patient_id, "/send-link", channel="sms")

    assert response.status_code == 400
    assert "There is no contact for this channel." in response.text
    assert counts(app) == before
    assert "no mobile number on file" in response.text


def test_unknown_channel_is_refused(
    app: Flask, client: FlaskClient, nurse: int, patient: factories.Enrolled
) -> None:
    before = counts(app)
    response = post(client, patient.patient_id, "/send-link", channel="fax")
    assert response.status_code == 400
    assert "Choose e-mail or text message." in response.text
    assert counts(app) == before


def test_reissue_needs_confirmation_then_revokes_the_old_link(
    app: Flask, client: FlaskClient, nurse: int, patient: factories.Enrolled
) -> None:
    before = counts(app)
    unconfirmed = post(client, patient.patient_id, "/reissue-link")
    assert unconfirmed.status_code == 400
    assert "Tick the box to confirm." in unconfirmed.text
    assert counts(app) == before

    response = post(client, patient.patient_id, "/reissue-link", confirm="y")

    assert response.status_code == 302
    page = client.get(response.headers["Location"]).text
    assert "The old link no longer works." in page
    new_token = token_in(page)
    assert new_token != patient.token
    assert not link_opens(app, patient.token)
    assert link_opens(app, new_token)
    with app.app_context():
        actions = db.session.scalars(
            db.select(AuditEvent.action).where(
                AuditEvent.actor_id == str(nurse), AuditEvent.action.startswith("link.")
            )
        ).all()
        assert sorted(actions) == ["link.issue", "link.revoke"]


def test_letter_has_link_qr_and_dates_but_nothing_that_reveals_the_illness(
    app: Flask, client: FlaskClient, nurse: int, patient: factories.Enrolled
) -> None:
    response = client.get(f"/staff/patients/{patient.patient_id}/letter")

    assert response.status_code == 200
    html = response.text
    assert '<html lang="it">' in html
    assert token_in(html) == patient.token
    assert 'class="qr-code"' in html
    with app.app_context():
        windows = db.session.execute(
            db.select(Assessment.window_opens_on, Assessment.window_closes_on).order_by(
                Assessment.window_opens_on
            )
        ).all()
    for opens_on, closes_on in windows:  # dates written out in the patient's language
        assert format_date(opens_on, format="full", locale="it") in html
        assert format_date(closes_on, format="full", locale="it") in html
    text = re.sub(r"<[^>]+>", " ", html)
    for word in (
        "MI01-0007",
        "NET",
        "tumor",
        "tumour",
        "tumore",
        "neuroendocrin",
        "TAE",
        "embolizz",
        "metasta",
        "Ospedale MI01",
        "trial",
        "studio",
    ):
        assert word.lower() not in text.lower(), word
    with open(app.static_folder + "/staff-a.css", encoding="utf-8") as css:  # type: ignore[operator]
        stylesheet = css.read()
    assert "@page { size: A4;" in stylesheet
    assert 'href="/static/staff-a.css"' in html


def test_letter_in_english_for_an_english_patient(
    app: Flask, client: FlaskClient, nurse: int
) -> None:
    enrolled = factories.enrol(app, "MI01-0009", language="en")
    html = client.get(f"/staff/patients/{enrolled.patient_id}/letter").text
    assert '<html lang="en">' in html
    assert "Dear Madam, dear Sir," in html
    assert "Baseline" in html


@pytest.mark.parametrize("role", ["analyst"])
def test_analysts_cannot_reach_links(
    app: Flask, client: FlaskClient, patient: factories.Enrolled, role: str
) -> None:
    factories.staff_user(app, "stats@example.org", role, site_code=None, language="en")
    factories.sign_in(client, "stats@example.org")
    for page in PAGES:
        assert client.get(f"/staff/patients/{patient.patient_id}{page}").status_code == 403
    token = factories.csrf_token(client.get("/auth/sign-in", follow_redirects=True).text)
    before = counts(app)
    for action in POSTS:
        response = client.post(
            f"/staff/patients/{patient.patient_id}{action}",
            data={"csrf_token": token, "channel": "email", "confirm": "y"},
        )
        assert response.status_code == 403
    assert counts(app) == before


def test_nurse_of_another_site_finds_nothing(
    app: Flask, client: FlaskClient, patient: factories.Enrolled
) -> None:
    factories.staff_user(app, "nurse@rm02.example.org", site_code="RM02", language="en")
    factories.sign_in(client, "nurse@rm02.example.org")
    for page in PAGES:
        assert client.get(f"/staff/patients/{patient.patient_id}{page}").status_code == 404
    own = factories.enrol(app, "RM02-0001", site_code="RM02")
    token = factories.csrf_token(client.get(f"/staff/patients/{own.patient_id}/link").text)
    before = counts(app)
    for action in POSTS:
        response = client.post(
            f"/staff/patients/{patient.patient_id}{action}",
            data={"csrf_token": token, "channel": "email", "confirm": "y"},
        )
        assert response.status_code == 404
    assert counts(app) == before
    with app.app_context():
        assert senders().email.sent == []  # type: ignore[attr-defined]


def test_posts_without_csrf_token_change_nothing(
    app: Flask, client: FlaskClient, nurse: int, patient: factories.Enrolled
) -> None:
    before = counts(app)
    for action in POSTS:
        response = client.post(
            f"/staff/patients/{patient.patient_id}{action}",
            data={"channel": "email", "confirm": "y"},
        )
        assert response.status_code == 400
    assert counts(app) == before


def test_withdrawn_patient_gets_no_link(
    app: Flask, client: FlaskClient, nurse: int, patient: factories.Enrolled
) -> None:
    from pro_app.models import Patient
    from pro_app.services import audit
    from pro_app.services.patient_status import withdraw

    with app.app_context():
        withdrawn = db.session.get(Patient, patient.patient_id)
        assert withdrawn is not None
        now = utcnow()
        withdraw(withdrawn, now.astimezone(ROME).date(), "patient's wish", now, audit.SYSTEM)
        db.session.commit()
    before = counts(app)
    sent = post(client, patient.patient_id, "/send-link", channel="email")
    assert sent.status_code == 400
    assert "no longer followed" in sent.text
    reissued = post(client, patient.patient_id, "/reissue-link", confirm="y")
    assert reissued.status_code == 400
    assert counts(app) == before


def test_link_that_cannot_be_derived_is_not_reissued_by_a_get(
    app: Flask, client: FlaskClient, nurse: int, patient: factories.Enrolled
) -> None:
    with app.app_context():
        link = db.session.scalar(db.select(PatientLink))
        assert link is not None
        link.salt = None  # a link from before derived tokens
        db.session.commit()
    before = counts(app)
    page = client.get(f"/staff/patients/{patient.patient_id}/link")
    assert page.status_code == 200
    assert "cannot be shown again" in page.text
    assert "qr-code" not in page.text
    letter = client.get(f"/staff/patients/{patient.patient_id}/letter")
    assert "issue a new link first" in letter.text
    assert counts(app) == before
