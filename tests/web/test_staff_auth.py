"""Staff sign-in: sessions that sign-out really revokes, lockout, timeouts, no fixation."""

from __future__ import annotations

import html
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient

from pro_app.extensions import db
from pro_app.models import StaffSession, StaffUser
from tests import factories


def test_pages_need_sign_in(app: Flask, client: FlaskClient) -> None:
    response = client.get("/staff/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/sign-in")


def test_sign_in_and_out(app: Flask, client: FlaskClient) -> None:
    factories.staff_user(app)
    response = factories.sign_in(client, "nurse@mi01.example.org")
    assert response.status_code == 302
    assert client.get("/staff/").status_code == 302  # on to the role's landing page
    page = client.get("/auth/sign-in")
    assert page.status_code == 302  # already signed in


def test_wrong_password_is_refused_in_italian(app: Flask, client: FlaskClient) -> None:
    factories.staff_user(app)
    response = factories.sign_in(client, "nurse@mi01.example.org", "wrong password!")
    assert response.status_code == 400
    assert "L'indirizzo e-mail o la password non sono corretti." in html.unescape(response.text)
    unknown = factories.sign_in(client, "nobody@mi01.example.org", "wrong password!")
    assert "L'indirizzo e-mail o la password non sono corretti." in html.unescape(unknown.text)


def test_empty_form_gets_field_messages(app: Flask, client: FlaskClient) -> None:
    page = client.get("/auth/sign-in")
    response = client.post("/auth/sign-in", data={"csrf_token": factories.csrf_token(page.text)})
    assert response.status_code == 400
    assert "Inserisca il Suo indirizzo e-mail." in response.text


def test_lockout_after_repeated_failures(app: Flask, client: FlaskClient) -> None:
    factories.staff_user(app)
    for _ in range(5):
        factories.sign_in(client, "nurse@mi01.example.org", "wrong password!")
    locked = factories.sign_in(client, "nurse@mi01.example.org")  # right password, too late
    assert locked.status_code == 400
    assert "bloccato" in locked.text
    with app.app_context():
        user = db.session.scalar(db.select(StaffUser))
        assert user is not None
        assert user.locked_until is not None


def test_copied_cookie_stops_working_after_sign_out(app: Flask, client: FlaskClient) -> None:
    factories.staff_user(app)
    factories.sign_in(client, "nurse@mi01.example.org")
    cookie = client.get_cookie("session")
    assert cookie is not None
    copied = app.test_client()
    copied.set_cookie("session", cookie.value)
    assert copied.get("/staff/").headers["Location"] != "/auth/sign-in?next=%2Fstaff%2F"
    page = client.get("/auth/sign-in?x=1", follow_redirects=True)
    client.post("/auth/sign-out", data={"csrf_token": factories.csrf_token(page.text)})
    assert copied.get("/staff/").headers["Location"].startswith("/auth/sign-in")
    with app.app_context():
        assert db.session.scalar(db.select(StaffSession.revoked_at)) is not None


def test_session_is_rotated_at_sign_in(app: Flask, client: FlaskClient) -> None:
    factories.staff_user(app)
    client.get("/auth/sign-in")
    before = client.get_cookie("session")
    factories.sign_in(client, "nurse@mi01.example.org")
    after = client.get_cookie("session")
    assert before is not None
    assert after is not None
    assert before.value != after.value


def test_idle_session_expires(app: Flask, client: FlaskClient) -> None:
    factories.staff_user(app)
    factories.sign_in(client, "nurse@mi01.example.org")
    with app.app_context():
        staff_session = db.session.scalar(db.select(StaffSession))
        assert staff_session is not None
        staff_session.last_seen_at -= timedelta(minutes=31)
        staff_session.created_at -= timedelta(minutes=31)
        db.session.commit()
    assert client.get("/staff/").headers["Location"].startswith("/auth/sign-in")


def test_sign_out_needs_csrf(app: Flask, client: FlaskClient) -> None:
    factories.staff_user(app)
    factories.sign_in(client, "nurse@mi01.example.org")
    assert client.post("/auth/sign-out").status_code == 400
