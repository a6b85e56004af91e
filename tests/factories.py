"""Test data made through the real services, so tests see what production would store."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Flask
from flask.testing import FlaskClient

from pro_app.extensions import db
from pro_app.models import Site
from pro_app.models.types import utcnow
from pro_app.services import accounts
from pro_app.services.enrolment import EnrolmentRequest, enroll_patient

ROME = ZoneInfo("Europe/Rome")


@dataclass(frozen=True)
class Enrolled:
    patient_id: int
    study_code: str
    token: str

    @property
    def path(self) -> str:
        return f"/p/{self.token}"


def site(app: Flask, code: str = "MI01") -> int:
    """A site (created once per code)."""
    with app.app_context():
        existing = accounts.site_by_code(code)
        if existing is not None:
            return existing.id
        created = accounts.add_site(code, f"Ospedale {code}")
        db.session.commit()
        return created.id


def enrol(
    app: Flask,
    code: str = "MI01-0001",
    *,
    days_since_randomization: int = 0,
    language: str = "it",
    site_code: str = "MI01",
    birth_year: int | None = None,
    now: datetime | None = None,
    email: str | None = "",
    mobile: str | None = None,
    channel: str = "email",
    timezone: str = "Europe/Rome",
) -> Enrolled:
    """A patient enrolled now (or at `now`), randomized that many days before."""
    site_id = site(app, site_code)
    now = now or utcnow()
    randomized_on: date = now.astimezone(ZoneInfo(timezone)).date() - timedelta(
        days=days_since_randomization
    )
    with app.app_context():
        enrolment = enroll_patient(
            EnrolmentRequest(
                study_code=code,
                site=db.session.get(Site, site_id),  # type: ignore[arg-type]
                arm="tae",
                randomized_on=randomized_on,
                language=language,
                timezone=timezone,
                email=f"{code.lower()}@example.org" if email == "" else email,
                mobile=mobile,
                preferred_channel=channel,
                birth_year=birth_year,
            ),
            now,
        )
        db.session.commit()
        return Enrolled(enrolment.patient.id, enrolment.patient.study_code, enrolment.token)


CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
FORM_KEY = re.compile(r'name="form_key" value="([^"]+)"')


HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def hidden_fields(html: str) -> dict[str, str]:
    """The hidden inputs of the page's questionnaire form, as a browser would post them."""
    form = html[html.find('class="questionnaire"') :] if 'class="questionnaire"' in html else html
    return dict(HIDDEN.findall(form[: form.find("</form>")]))


def rome(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An instant given as Rome wall-clock time."""
    return datetime(year, month, day, hour, minute, tzinfo=ROME)


def csrf_token(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def form_key(html: str) -> str:
    match = FORM_KEY.search(html)
    assert match, "no form key on the page"
    return match.group(1)


def open_link(client: FlaskClient, enrolled: Enrolled) -> str:
    """Open the link and press start, as a patient does; returns the first page's HTML."""
    welcome = client.get(enrolled.path)
    assert welcome.status_code == 200
    started = client.post(
        enrolled.path, data={"csrf_token": csrf_token(welcome.text), "action": "start"}
    )
    assert started.status_code == 302, started.text
    return client.get(started.headers["Location"], follow_redirects=True).text


STAFF_PASSWORD = "correct horse battery"


def staff_user(
    app: Flask,
    email: str = "nurse@mi01.example.org",
    role: str = "nurse",
    site_code: str | None = "MI01",
    language: str = "it",
) -> int:
    """A staff account (password STAFF_PASSWORD); returns its id."""
    site_id = site(app, site_code) if site_code else None
    with app.app_context():
        user = accounts.add_staff(
            email,
            email.split("@")[0].title(),
            role,
            STAFF_PASSWORD,
            db.session.get(Site, site_id) if site_id else None,
            language,
        )
        db.session.commit()
        return user.id


def sign_in(client: FlaskClient, email: str, password: str = STAFF_PASSWORD):  # type: ignore[no-untyped-def]
    """Sign in through the real form; returns the response to the POST."""
    page = client.get("/auth/sign-in")
    return client.post(
        "/auth/sign-in",
        data={"csrf_token": csrf_token(page.text), "email": email, "password": password},
    )
