"""A nurse enrols a patient at the desktop and e-mails the link over real SMTP; a phone opens it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from email.message import Message as MimeMessage
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from playwright.sync_api import expect

from pro_app.extensions import db
from pro_app.models import Message, Patient
from pro_app.models.types import utcnow
from pro_app.protocol.eligibility import load_checklist
from pro_app.staff import link_pages
from tests import factories
from tests.browser.conftest import PHONE, screenshot
from tests.conftest import make_config
from tests.smtp_server import Inbox, free_port, running_smtp

DESKTOP = {"width": 1366, "height": 768}
ROME = ZoneInfo("Europe/Rome")
NURSE = "infermiera@mi01.example.org"


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def app_config(database_uri: str, smtp_port: int) -> dict[str, Any]:
    return make_config(
        database_uri,
        MAIL_BACKEND="smtp",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=smtp_port,
        MAIL_TIMEOUT=5,
        PATIENT_SECOND_FACTOR=True,
    )


@pytest.fixture
def inbox(smtp_port: int) -> Iterator[Inbox]:
    received = Inbox()
    with running_smtp(received, port=smtp_port):
        yield received


@pytest.fixture
def desktop(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport=DESKTOP, locale="it-IT")
    yield context
    context.close()


def plain_text(mime: MimeMessage) -> str:
    for part in mime.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("the mail has no text part")


def test_nurse_enrols_and_emails_the_link_which_opens_on_a_phone(  # type: ignore[no-untyped-def]
    app: Flask, live_server: str, inbox: Inbox, desktop, phone, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The mail must carry this server's address, and "send now" must not fall in quiet hours.
    app.config["BASE_URL"] = live_server
    daytime = utcnow().astimezone(ROME).replace(hour=11, minute=0)
    monkeypatch.setattr(link_pages, "utcnow", lambda: daytime)
    factories.staff_user(app, NURSE)
    checklist = load_checklist(app.config["QUESTIONNAIRE_DIR"] + "/eligibility.yaml")

    page = desktop.new_page()
    page.goto(f"{live_server}/auth/sign-in?next=/staff/enrol")
    page.fill("#email", NURSE)
    page.fill("#password", factories.STAFF_PASSWORD)
    page.click("form.stacked button[type=submit]")
    page.wait_for_url(re.compile(r"/staff/enrol$"))

    randomized_on = utcnow().astimezone(ROME).date() - timedelta(days=1)
    page.fill("#study_code", "mi01-0101")
    page.fill("#randomized_on", randomized_on.isoformat())
    page.check("#arm-0")
    page.fill("#email", "paziente.0101@example.org")
    page.fill("#mobile", "06 1234 5678")  # a landline: refused
    page.fill("#birth_year", "1956")
    for criterion in checklist.criteria:
        answer = "yes" if criterion.kind == "inclusion" else "no"
        page.check(f"input[name='eligibility_{criterion.code}'][value='{answer}']")
    page.check("input[name='eligibility_ki67_max_20'][value='no']")  # not eligible
    page.click("form.enrol-form > button[type=submit]")
    expect(page.locator(".error-summary li")).to_have_count(2)
    expect(page.locator("#eligibility_ki67_max_20-error")).to_be_visible()
    screenshot(page, "staff-enrol-errors")

    page.fill("#mobile", "347 765 4321")
    page.check("input[name='eligibility_ki67_max_20'][value='yes']")
    screenshot(page, "staff-enrol")
    page.click("form.enrol-form > button[type=submit]")
    page.wait_for_url(re.compile(r"/staff/patients/\d+/link$"))
    expect(page.locator(".flash-success")).to_contain_text("MI01-0101")
    expect(page.locator("svg.qr-code")).to_be_visible()
    screenshot(page, "staff-link-page")

    page.click("form.send-form:has(input[value=email]) button[type=submit]")
    page.wait_for_load_state()
    expect(page.locator(".flash-success")).to_be_visible()
    received = inbox.drain()
    assert [mime["To"] for mime in received] == ["paziente.0101@example.org"]
    match = re.search(rf"{re.escape(live_server)}/p/[A-Za-z0-9_-]+", plain_text(received[0]))
    assert match, "no link in the mail"
    link = match.group(0)
    assert page.locator("#link-url").input_value() == link

    page.click("a[href$='/letter']")
    page.wait_for_url(re.compile(r"/letter$"))
    expect(page.locator(".letter-url")).to_have_text(link)
    expect(page.locator(".letter-steps")).to_contain_text("anno di nascita")
    screenshot(page, "staff-letter")
    assert "MI01-0101" not in page.locator("main").inner_text()
    pdf = page.pdf(format="A4", prefer_css_page_size=True)
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) == 1, "the letter must fit one A4 page"
    page.emulate_media(media="print")
    page.set_viewport_size({"width": 643, "height": 960})  # A4 less the @page margins, at 96 dpi
    screenshot(page, "staff-letter-print")

    patient_page = phone.new_page()
    patient_page.goto(link)
    patient_page.fill("#birth_year", "1956")
    patient_page.click("button[name=action][value=start]")
    patient_page.wait_for_url(re.compile(r"/q/page/1$"))
    assert patient_page.viewport_size == PHONE
    expect(patient_page.locator("input[name='qlq_c30-1']").first).to_be_visible()
    patient_page.locator("input[name='qlq_c30-1'][value='1']").check()

    with app.app_context():
        patient = db.session.scalar(db.select(Patient).where(Patient.study_code == "MI01-0101"))
        assert patient is not None
        assert patient.eligibility_confirmed_by_id is not None
        sent = db.session.scalar(db.select(Message).where(Message.kind == "link"))
        assert sent is not None
        assert sent.status == "sent"
