"""Logs never hold a link token, a contact detail or an answer, whatever is logged at DEBUG.

A whole trial round is played with every logger at DEBUG and captured: a nurse enrols a patient
with e-mail and mobile, the dispatcher sends the invitation by e-mail and the link by SMS, the
patient answers (pages, autosave, a refused value, a page over HTTP through a real server for
the access log) and submits, staff look at every page about the patient, an analyst downloads
the data and calls the API, and a few things go wrong on the way (a 404, a hostile post, an
error whose message quotes an address). Then every record is searched, and so is every JSON
line the app's own stderr handler wrote (structured fields included).
"""

from __future__ import annotations

import io
import json
import logging
import re
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from pro_app import logs
from pro_app.extensions import db
from pro_app.models import Assessment, Patient, StaffUser
from pro_app.models.types import utcnow
from pro_app.protocol.eligibility import load_checklist
from pro_app.services import api_tokens
from pro_app.services.senders import senders
from pro_app.staff import link_pages
from tests import factories
from tests.conftest import make_config
from tests.reliability.test_database_outage import PROJECT_ROOT
from tests.thread_server import serving

ROME = ZoneInfo("Europe/Rome")
CHECKLIST = load_checklist(PROJECT_ROOT / "questionnaires" / "eligibility.yaml")
EMAIL = "Mario.Rossi-Privato@Example.org"
MOBILE = "347 765 4321"
MOBILE_FORMS = ("3477654321", "347 765 4321", "+393477654321", "765 4321", "7654321")
ITEM_IN_TEXT = re.compile(r"(qlq_c30|qlq_gi_net21)\W{0,3}\d{1,2}\b", re.IGNORECASE)
FORMATTER = logging.Formatter()
JSON_FORMATTER = logs.JsonFormatter()


@pytest.fixture
def app_config(database_uri: str) -> dict[str, Any]:
    return make_config(
        database_uri,
        RATELIMIT_ENABLED=False,
        STAFF_SIGN_IN_RATE_LIMIT="1000/minute",
        LOG_FORMAT="json",
    )


@pytest.fixture
def every_logger_at_debug(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Root and every named logger at DEBUG, all feeding caplog (even those not propagating)."""
    caplog.set_level(logging.DEBUG)
    names = [*logging.root.manager.loggerDict, "werkzeug", "gunicorn.access", "gunicorn.error"]
    changed = []
    for name in dict.fromkeys(names):
        logger = logging.getLogger(name)
        changed.append((logger, logger.level, logger.propagate))
        logger.setLevel(logging.DEBUG)
        if not logger.propagate:
            logger.addHandler(caplog.handler)
    yield caplog
    for logger, level, _propagate in changed:
        logger.setLevel(level)
        if caplog.handler in logger.handlers:
            logger.removeHandler(caplog.handler)


@pytest.fixture
def json_lines(app: Flask) -> Iterator[io.StringIO]:
    """What the app's stderr handler writes (JSON, LOG_FORMAT=json) during the test."""
    handler = logs.process_handler("json")
    buffer = io.StringIO()
    previous = handler.setStream(buffer)  # type: ignore[attr-defined]
    yield buffer
    handler.setStream(previous)  # type: ignore[attr-defined]


def record_text(record: logging.LogRecord) -> str:
    """Everything a handler could write: message, raw arguments, fields, traceback, stack."""
    parts = [str(record.msg), record.getMessage(), repr(record.args)]
    parts.append(JSON_FORMATTER.format(record))  # the structured fields, as written
    if record.exc_info:
        parts.append(FORMATTER.formatException(record.exc_info))
    parts += [record.exc_text or "", record.stack_info or ""]
    return "\n".join(parts)


def leaks(records: list[logging.LogRecord], secrets: list[str]) -> list[str]:
    return leaks_in_texts([(record.name, record_text(record)) for record in records], secrets)


def leaks_in_texts(texts: list[tuple[str, str]], secrets: list[str]) -> list[str]:
    found = []
    for where, text in texts:
        lowered = text.lower()
        for secret in secrets:
            if secret.lower() in lowered:
                found.append(f"{where}: {secret!r} in {text[:300]!r}")
        if ITEM_IN_TEXT.search(text):
            found.append(f"{where}: an answer's item in {text[:300]!r}")
    return found


def test_the_leak_finder_finds_leaks() -> None:
    """The search below can fail: it recognises each kind of secret."""
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "sent to %s", (EMAIL,), None)
    assert leaks([record], [EMAIL])
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "qlq_c30-3 = %s", ("2",), None)
    assert leaks([record], [])
    try:
        raise ValueError(f"bad number {MOBILE_FORMS[0]}")
    except ValueError as error:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "oops", (), (ValueError, error, error.__traceback__)
        )
    assert leaks([record], list(MOBILE_FORMS))
    # A secret in a structured field only (what the JSON line carries) is found too.
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "sent", (), None)
    record.__dict__.update(logs.event("message.sent", to=EMAIL))
    assert leaks([record], [EMAIL])
    assert leaks_in_texts([("line", json.dumps({"to": EMAIL}))], [EMAIL])


def next_clinic_hour() -> datetime:
    """11:00 in Rome, today if still ahead, else tomorrow: a time for sending."""
    now = utcnow().astimezone(ROME)
    eleven = now.replace(hour=11, minute=0, second=0, microsecond=0)
    return eleven if eleven > now + timedelta(minutes=5) else eleven + timedelta(days=1)


def enrol_through_the_page(client: FlaskClient) -> str:
    page = client.get("/staff/enrol")
    today = utcnow().astimezone(ROME).date()
    form = {
        "csrf_token": factories.csrf_token(page.text),
        "study_code": "MI01-0042",
        "arm": "tae",
        "randomized_on": (today - timedelta(days=1)).isoformat(),
        "language": "it",
        "timezone": "Europe/Rome",
        "email": EMAIL,
        "mobile": MOBILE,
        "preferred_channel": "email",
        "birth_year": "1950",
        **{
            f"eligibility_{c.code}": "yes" if c.kind == "inclusion" else "no"
            for c in CHECKLIST.criteria
        },
    }
    enrolled = client.post("/staff/enrol", data=form)
    assert enrolled.status_code == 302, enrolled.text
    link_page = client.get(enrolled.headers["Location"])
    match = re.search(r"https://pro\.example\.test/p/([A-Za-z0-9_-]+)", link_page.text)
    assert match
    return match.group(1)


def answer_and_submit(app: Flask, token: str) -> list[str]:
    """The patient's whole questionnaire; returns the session's CSRF token and page keys."""
    patient = app.test_client()
    html = factories.open_link(patient, factories.Enrolled(0, "", token))
    headers = {"X-CSRFToken": factories.csrf_token(html)}
    autosave = {"form_key": factories.form_key(html), "name": "qlq_c30-2", "value": "3"}
    assert patient.post("/q/answer", json=autosave, headers=headers).status_code == 200
    refused = {**autosave, "value": "9"}
    assert patient.post("/q/answer", json=refused, headers=headers).status_code == 400
    number = 1
    while True:
        names = sorted(set(re.findall(r'type="radio" name="([a-z0-9_]+-\d+)"', html)))
        answers = {name: str(1 + i % 4) for i, name in enumerate(names)}
        data = {**factories.hidden_fields(html), "action": "next", **answers}
        location = patient.post(f"/q/page/{number}", data=data).headers["Location"]
        html = patient.get(location).text
        if location == "/q/review":
            break
        number += 1
    review = {"csrf_token": factories.csrf_token(html), "form_key": factories.form_key(html)}
    assert patient.post("/q/review", data={**review, "action": "submit"}).status_code == 302
    return [factories.csrf_token(html)]


def open_over_http(app: Flask, token: str) -> None:
    """The link through a real server, so that its access log records the request line."""
    with serving(app) as url, urllib.request.urlopen(f"{url}/p/{token}") as answer:  # noqa: S310
        assert answer.status == 200


def test_a_whole_round_logs_nothing_personal(
    app: Flask,
    runner: FlaskCliRunner,
    monkeypatch: pytest.MonkeyPatch,
    every_logger_at_debug: pytest.LogCaptureFixture,
    json_lines: io.StringIO,
) -> None:
    caplog = every_logger_at_debug
    clinic_hour = next_clinic_hour()
    monkeypatch.setattr(link_pages, "utcnow", lambda: clinic_hour)
    factories.staff_user(app, "nurse@mi01.example.org", "nurse", "MI01")
    factories.staff_user(app, "inv@mi01.example.org", "investigator", "MI01")
    factories.staff_user(app, "analyst@example.org", "analyst", None)
    nurse = app.test_client()
    assert factories.sign_in(nurse, "nurse@mi01.example.org").status_code == 302
    token = enrol_through_the_page(nurse)
    with app.app_context():
        patient = db.session.scalar(db.select(Patient))
        assert patient is not None
        patient_id = patient.id
    # The dispatcher's pass sends the invitation by e-mail; the nurse sends the link by SMS.
    outcome = runner.invoke(args=["reminders", "run", "--now", clinic_hour.isoformat()])
    assert outcome.exit_code == 0, outcome.output
    link_page = nurse.get(f"/staff/patients/{patient_id}/link")
    sms = nurse.post(
        f"/staff/patients/{patient_id}/send-link",
        data={"csrf_token": factories.csrf_token(link_page.text), "channel": "sms"},
    )
    assert sms.status_code == 302
    with app.app_context():
        assert len(senders().email.sent) == 1  # type: ignore[attr-defined]
        assert len(senders().sms.sent) == 1  # type: ignore[attr-defined]
    open_over_http(app, token)
    answer_and_submit(app, token)
    # Staff look at everything about the patient; an investigator at the audit trail.
    investigator = app.test_client()
    assert factories.sign_in(investigator, "inv@mi01.example.org").status_code == 302
    with app.app_context():
        assessment_id = db.session.scalar(
            db.select(Assessment.id).where(Assessment.status == "completed")
        )
    for path in (
        "/staff/worklist",
        f"/staff/patients/{patient_id}",
        f"/staff/patients/{patient_id}/link",
        f"/staff/patients/{patient_id}/letter",
        f"/staff/assessments/{assessment_id}/correct?item=qlq_c30-3",
        f"/staff/audit?patient_id={patient_id}",
        "/staff/audit.csv",
    ):
        response = investigator.get(path)
        response.get_data()
        assert response.status_code == 200, path
    # The analyst downloads and calls the API.
    analyst = app.test_client()
    assert factories.sign_in(analyst, "analyst@example.org").status_code == 302
    for path in ("/analyst/export/items.csv", "/analyst/export/scores.csv"):
        download = analyst.get(path)
        download.get_data()  # streamed: read to the end, which also ends its app context
        assert download.status_code == 200
    with app.app_context():
        user = db.session.scalar(db.select(StaffUser).where(StaffUser.role == "analyst"))
        assert user is not None
        _row, raw_api_token = api_tokens.create_token(user, "script", utcnow())
        db.session.commit()
    api = app.test_client()
    items = api.get("/api/v1/exports/items", headers={"Authorization": f"Bearer {raw_api_token}"})
    items.get_data()
    assert items.status_code == 200
    # Things going wrong: a 404, a hostile post, and an error quoting the patient's address.
    assert investigator.get(f"/staff/patients/{patient_id + 99}").status_code == 404
    assert investigator.get(f"/p/{token}x%00").status_code == 400

    def failing_page(*_args: Any, **_kwargs: Any) -> Any:
        raise ValueError(f"could not reach {EMAIL} at {MOBILE_FORMS[2]}")

    monkeypatch.setattr(link_pages, "render_template", failing_page)
    assert investigator.get(f"/staff/patients/{patient_id}/link").status_code == 500

    records = caplog.records
    secrets = [token, raw_api_token, EMAIL, *MOBILE_FORMS, "Mario.Rossi"]
    assert leaks(records, secrets) == []
    # The lines really written: each one JSON, none with anything personal.
    lines = json_lines.getvalue().splitlines()
    entries = [json.loads(line) for line in lines]
    assert leaks_in_texts([("stderr", line) for line in lines], secrets) == []
    events = [entry["event"] for entry in entries]
    assert events.count("request") > 30
    assert "message.sent" in events
    assert {entry["status"] for entry in entries if entry["event"] == "request"} >= {
        200,
        302,
        400,
        404,
        500,
    }
    assert EMAIL.lower() not in outcome.output.lower()
    # The search had something to search: DEBUG was on, the access log and the error were there.
    assert len(records) > 50
    assert any("/p/[token]" in record.getMessage() for record in records)
    assert any(record.levelno == logging.ERROR for record in records)
    print(
        f"{len(records)} log records and {len(lines)} JSON lines searched, "
        "none with a token, contact or answer"
    )
