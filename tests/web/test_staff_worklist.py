"""The worklist: states on a known data set, counts, filters, search, site scoping, efficiency."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func

from pro_app.extensions import db
from pro_app.messaging.errors import DeliveryError
from pro_app.models import Assessment, Message, Patient, StaffUser
from pro_app.models.types import utcnow
from pro_app.services import audit, patient_status
from pro_app.services import worklist as work
from pro_app.services.answering import store_answers, submit
from pro_app.services.definitions import trial_schedule
from pro_app.services.dispatch import dispatch_due_messages
from pro_app.services.link_delivery import send_link_now
from pro_app.services.senders import senders
from tests import factories

NURSE = "nurse@mi01.example.org"
ANALYST = "analyst@example.org"


def enrol_days_ago(app: Flask, code: str, days: int, **kwargs: Any) -> factories.Enrolled:
    """Enrolled and randomized `days` days ago: the baseline window opened then."""
    return factories.enrol(app, code, now=utcnow() - timedelta(days=days), **kwargs)


def complete_baseline(app: Flask, patient_id: int) -> None:
    """The patient answers every baseline item (all 2s) and submits, through the services."""
    with app.app_context():
        assessment = db.session.scalar(
            db.select(Assessment).where(
                Assessment.patient_id == patient_id, Assessment.timepoint == "baseline"
            )
        )
        assert assessment is not None
        now = utcnow()
        values: dict[str, int | None] = {f"qlq_c30-{i}": 2 for i in range(1, 29)}
        values |= {"qlq_c30-29": 5, "qlq_c30-30": 6}
        values |= {f"qlq_gi_net21-{i}": 2 for i in range(31, 52)}
        store_answers(assessment, values, now=now, actor=audit.SYSTEM)
        assert submit(assessment, now, audit.SYSTEM)
        db.session.commit()


def midday_today() -> datetime:
    """Today at noon in Rome: outside quiet hours, so "send now" really tries to send."""
    today = utcnow().astimezone(factories.ROME).date()
    return factories.rome(today.year, today.month, today.day, 12)


def fail_link_message(app: Flask, patient_id: int, reason: str = "SMTP 550 mailbox unavailable"):  # type: ignore[no-untyped-def]
    """A staff "send link" whose delivery is refused for good (a permanently bad address)."""
    with app.app_context():
        sender = senders().email
        sender.fail_with = DeliveryError(reason, permanent=True)  # type: ignore[attr-defined]
        try:
            patient = db.session.get(Patient, patient_id)
            assert patient is not None
            send_link_now(patient, midday_today(), audit.SYSTEM, "email")
        finally:
            sender.fail_with = None  # type: ignore[attr-defined]


def withdraw(app: Flask, patient_id: int) -> None:
    with app.app_context():
        patient = db.session.get(Patient, patient_id)
        assert patient is not None
        patient_status.withdraw(
            patient, patient.randomized_on, "moved away", utcnow(), audit.SYSTEM
        )
        db.session.commit()


@pytest.fixture
def known(app: Flask) -> dict[str, factories.Enrolled]:
    """One patient per state at site MI01, and one at site TO01."""
    data = {
        "due": factories.enrol(app, "MI01-0001"),  # window opened today
        "open": enrol_days_ago(app, "MI01-0002", 1),  # day 1: no reminder today
        "overdue": enrol_days_ago(app, "MI01-0003", 4),  # day 4: after the day-3 reminder
        "missed": enrol_days_ago(app, "MI01-0004", 10),  # the 7-day window is over
        "completed": factories.enrol(app, "MI01-0005"),
        "withdrawn": enrol_days_ago(app, "MI01-0006", 2),
        "failed": enrol_days_ago(app, "MI01-0007", 1, email="bad.address@example.org"),
        "other_site": factories.enrol(app, "TO01-0001", site_code="TO01"),
    }
    complete_baseline(app, data["completed"].patient_id)
    withdraw(app, data["withdrawn"].patient_id)
    fail_link_message(app, data["failed"].patient_id)
    return data


def signed_in(app: Flask, client: FlaskClient, email: str = NURSE, role: str = "nurse",
              site_code: str | None = "MI01") -> FlaskClient:  # fmt: skip
    factories.staff_user(app, email, role, site_code, language="en")
    assert factories.sign_in(client, email).status_code == 302
    return client


def codes_on(html: str) -> set[str]:
    """Study codes linked from the page's rows."""
    return set(re.findall(r'<a href="/staff/patients/\d+">([A-Z0-9-]+)</a>', html))


def rows_table(html: str) -> str:
    """The worklist's main table."""
    start = html.index('<table class="worklist"')
    return html[start : html.index("</table>", start)]


def test_each_section_lists_the_right_patients(
    app: Flask, client: FlaskClient, known: dict[str, factories.Enrolled]
) -> None:
    signed_in(app, client)
    expected = {
        "due_today": {"MI01-0001"},
        "open": {"MI01-0001", "MI01-0002", "MI01-0003", "MI01-0007"},
        "overdue": {"MI01-0003"},
        "missed": {"MI01-0004"},
        "completed": {"MI01-0005"},
        "not_done": {"MI01-0006"},
        "failed": {"MI01-0007"},
    }
    for state, codes in expected.items():
        page = client.get(f"/staff/worklist?state={state}")
        assert page.status_code == 200, state
        assert codes_on(page.text) == codes, state
    upcoming = client.get("/staff/worklist?state=upcoming&timepoint=month3")
    assert codes_on(upcoming.text) == {f"MI01-000{i}" for i in range(1, 6)} | {"MI01-0007"}
    assert codes_on(client.get("/staff/worklist").text) == expected["open"]  # the default


def test_counts_per_time_point(app: Flask, known: dict[str, factories.Enrolled]) -> None:
    with app.app_context():
        nurse = db.session.get(StaffUser, factories.staff_user(app))
        assert nurse is not None
        result = work.build_worklist(nurse, work.WorklistQuery(work.WorkFilter.ALL), utcnow())
    baseline = result.counts["baseline"]
    assert baseline["due_today"] == 1
    assert baseline["open"] == 4
    assert baseline["overdue"] == 1
    assert baseline["missed"] == 1
    assert baseline["completed"] == 1
    assert baseline["not_done"] == 1
    assert result.counts["month3"]["upcoming"] == 6  # the withdrawn patient's are not done
    assert result.counts["month3"]["not_done"] == 1
    assert result.total == 7 * 3
    assert result.failed_count == 1


def test_counts_table_on_the_page(
    app: Flask, client: FlaskClient, known: dict[str, factories.Enrolled]
) -> None:
    signed_in(app, client)
    page = client.get("/staff/worklist").text
    table = page[page.index('class="counts"') :]
    baseline_row = table[table.index("Baseline") : table.index("</tr>", table.index("Baseline"))]
    cells = re.findall(r'<td class="number">(?:<a [^>]*>)?(\d+)', baseline_row)
    assert cells == ["1", "4", "1", "1", "1", "1", "0"]


def test_search_is_plain_text_and_case_insensitive(
    app: Flask, client: FlaskClient, known: dict[str, factories.Enrolled]
) -> None:
    signed_in(app, client)
    assert codes_on(client.get("/staff/worklist?state=all&q=mi01-0003").text) == {"MI01-0003"}
    assert codes_on(client.get("/staff/worklist?state=all&q=0005").text) == {"MI01-0005"}
    for wildcard in ("%", "_", "MI01_0003", "' OR 1=1 --"):
        response = client.get("/staff/worklist", query_string={"state": "all", "q": wildcard})
        assert response.status_code == 200
        assert codes_on(response.text) == set(), wildcard
    script = client.get("/staff/worklist", query_string={"q": "<script>alert(1)</script>"})
    assert script.status_code == 200
    assert "<script>alert(1)" not in script.text
    assert "&lt;script&gt;" in script.text


def test_bad_filters_are_refused_with_a_message(
    app: Flask, client: FlaskClient, known: dict[str, factories.Enrolled]
) -> None:
    signed_in(app, client)
    response = client.get("/staff/worklist?state=everything&timepoint=month99")
    assert response.status_code == 400
    assert response.text.count("Choose one of the listed options.") == 2
    assert 'aria-describedby="state-error"' in response.text
    too_long = client.get("/staff/worklist", query_string={"q": "X" * 41})
    assert too_long.status_code == 400
    assert "Enter at most 40 characters." in too_long.text


def test_time_point_and_site_filters(
    app: Flask, client: FlaskClient, known: dict[str, factories.Enrolled]
) -> None:
    signed_in(app, client, ANALYST, "analyst", None)
    everything = client.get("/staff/worklist?state=upcoming&timepoint=month6").text
    assert "TO01-0001" in codes_on(everything)
    assert "MI01-0001" in codes_on(everything)
    with app.app_context():
        site_id = factories.site(app, "TO01")
    only_to = client.get(f"/staff/worklist?state=upcoming&timepoint=month6&site={site_id}")
    assert codes_on(only_to.text) == {"TO01-0001"}
    baseline_only = client.get("/staff/worklist?state=all&timepoint=baseline&q=MI01-0005").text
    assert codes_on(baseline_only) == {"MI01-0005"}
    rows = rows_table(baseline_only)
    assert "Baseline" in rows
    assert "Month 3" not in rows
    assert "Month 6" not in rows


def test_nurse_of_another_site_sees_nothing_of_site_a(
    app: Flask, client: FlaskClient, known: dict[str, factories.Enrolled]
) -> None:
    signed_in(app, client, "nurse@to01.example.org", "nurse", "TO01")
    for state in ("all", "open", "due_today", "failed", "missed", "completed", "upcoming"):
        page = client.get(f"/staff/worklist?state={state}").text
        assert "MI01-" not in page, state
    assert codes_on(client.get("/staff/worklist?state=all").text) == {"TO01-0001"}
    searched = client.get("/staff/worklist?state=all&q=MI01").text
    assert codes_on(searched) == set()
    assert "MI01-" not in searched
    # The site filter is for all-sites users only: a nurse cannot widen her view with it.
    with app.app_context():
        mi01 = factories.site(app, "MI01")
    assert "MI01-" not in client.get(f"/staff/worklist?state=all&site={mi01}").text
    with app.app_context():
        nurse = db.session.scalar(db.select(StaffUser).where(StaffUser.site_id.is_not(None)))
        assert nurse is not None
        result = work.build_worklist(nurse, work.WorklistQuery(work.WorkFilter.ALL), utcnow())
    assert sum(result.totals.values()) > 0
    assert result.total == 3
    assert result.failed_count == 0
    for enrolled in known.values():
        expected = 200 if enrolled.study_code.startswith("TO01") else 404
        assert client.get(f"/staff/patients/{enrolled.patient_id}").status_code == expected


def test_analyst_sees_no_contact_details_nor_actions(
    app: Flask, client: FlaskClient, known: dict[str, factories.Enrolled]
) -> None:
    signed_in(app, client, ANALYST, "analyst", None)
    for state in ("all", "open", "failed", "due_today"):
        page = client.get(f"/staff/worklist?state={state}")
        assert page.status_code == 200
        assert "@example.org" not in page.text.replace(ANALYST, "")
        assert "/send-link" not in page.text
    assert "SMTP 550 mailbox unavailable" in client.get("/staff/worklist?state=failed").text


def test_resend_buttons_for_site_staff_on_open_rows(
    app: Flask, client: FlaskClient, known: dict[str, factories.Enrolled]
) -> None:
    signed_in(app, client)
    page = client.get("/staff/worklist?state=all").text
    has_endpoint = "staff.send_link" in app.view_functions
    open_id, withdrawn_id = known["open"].patient_id, known["withdrawn"].patient_id
    assert (f'action="/staff/patients/{open_id}/send-link"' in page) == has_endpoint
    assert f'action="/staff/patients/{withdrawn_id}/send-link"' not in page
    if has_endpoint:
        form = page[page.index(f'action="/staff/patients/{open_id}/send-link"') :]
        form = form[: form.index("</form>")]
        assert 'name="channel" value="email"' in form
        assert 'name="csrf_token"' in form


def test_failed_message_is_shown_with_its_error(
    app: Flask, client: FlaskClient, known: dict[str, factories.Enrolled]
) -> None:
    signed_in(app, client)
    page = client.get("/staff/worklist?state=failed").text
    assert "SMTP 550 mailbox unavailable" in page
    assert 'Messages that failed <span class="count">(1)</span>' in page


def test_error_text_is_masked_for_analysts_only(app: Flask) -> None:
    from pro_app.staff.worklist import error_text

    analyst = StaffUser(role="analyst")
    nurse = StaffUser(role="nurse")
    text = "550 <mario.rossi@example.org> unknown; sms +39 347 123 4567 refused; 5.1.1"
    assert error_text(text, nurse) == text
    masked = error_text(text, analyst)
    assert "mario.rossi" not in masked
    assert "347" not in masked
    assert "5.1.1" in masked
    assert "550" in masked


@contextmanager
def counting_statements(app: Flask) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def statements_for(app: Flask, client: FlaskClient, url: str) -> int:
    client.get(url)  # warm up (caches, first-request work)
    with counting_statements(app) as statements:
        assert client.get(url).status_code == 200
    return len(statements)


def test_statement_count_does_not_grow_with_patients(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every page of the worklist runs as many statements for 30 patients as for 3."""
    monkeypatch.setattr(work, "PAGE_SIZE", 4)  # so that a second page exists at both sizes
    signed_in(app, client)
    urls = [
        "/staff/worklist",
        *(f"/staff/worklist?state={state}" for state in ("all", "due_today", "overdue")),
        *(f"/staff/worklist?state={state}" for state in ("missed", "upcoming", "failed")),
        "/staff/worklist?state=all&page=2",
        "/staff/worklist?state=all&timepoint=baseline&q=MI01",
    ]
    for number, days in ((1, 0), (2, 4), (3, 10)):  # due today, overdue, missed
        enrol_days_ago(app, f"MI01-{number:04d}", days)
    fail_link_message(app, 1)
    few = {url: statements_for(app, client, url) for url in urls}
    for number in range(4, 31):
        days = number % 12
        enrolled = enrol_days_ago(app, f"MI01-{number:04d}", days)
        if number % 3 == 0 and days < 7:  # answered while the window is open
            complete_baseline(app, enrolled.patient_id)
        elif number % 7 == 0:
            withdraw(app, enrolled.patient_id)
        elif number % 6 == 0:
            fail_link_message(app, enrolled.patient_id)
    many = {url: statements_for(app, client, url) for url in urls}
    assert few == many


# The worklist's order: most urgent first; work ahead by closing date, finished work latest first.
URGENCY = [
    work.WorkState.OVERDUE,
    work.WorkState.OPEN,
    work.WorkState.UPCOMING,
    work.WorkState.MISSED,
    work.WorkState.NOT_DONE,
    work.WorkState.COMPLETED,
]


def expected_worklist(now: datetime) -> list[tuple[int, work.WorkState, bool]]:
    """Every assessment's state by the protocol's pure functions, in the worklist's order."""
    schedule = trial_schedule()
    sent: dict[int, set[str]] = {}
    for assessment_id, kind in db.session.execute(
        db.select(Message.assessment_id, Message.kind).where(Message.status == "sent")
    ):
        sent.setdefault(assessment_id, set()).add(kind)
    ranked = []
    for assessment in db.session.scalars(db.select(Assessment)):
        tz = ZoneInfo(assessment.patient.timezone)
        today = now.astimezone(tz).date()
        reminders = work.reminder_days(schedule, assessment.window, tz)
        state = work.classify(
            assessment.status, assessment.window, today, reminders, sent.get(assessment.id, ())
        )
        due = work.is_due_today(state, assessment.window, today, reminders)
        days = assessment.window_closes_on.toordinal()
        if state not in (work.WorkState.OPEN, work.WorkState.OVERDUE, work.WorkState.UPCOMING):
            days = -days
        key = (URGENCY.index(state), days, assessment.patient.study_code)
        ranked.append((key, (assessment.id, state, due)))
    return [row for _key, row in sorted(ranked)]


def test_states_decided_by_the_database_match_the_protocol_functions(
    app: Flask, known: dict[str, factories.Enrolled], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SQL classification, counts and order agree with work_states, hour after hour."""
    monkeypatch.setattr(work, "PAGE_SIZE", 1000)
    start = utcnow()
    # Their "today" differs from Rome's for part of each day; two month-3 windows open meanwhile.
    elsewhere = [("America/New_York", 2), ("Pacific/Auckland", 75), ("America/New_York", 76)]
    for number, (zone, days) in enumerate(elsewhere, start=101):
        factories.enrol(app, f"MI01-{number:04d}", now=start - timedelta(days=days), timezone=zone)
    analyst = factories.staff_user(app, ANALYST, "analyst", None)
    with app.app_context():
        user = db.session.get(StaffUser, analyst)
        assert user is not None
        for step in range(40):  # every 7 hours for 12 days; a dispatcher pass before some looks
            now = start + timedelta(hours=7 * step)
            if step % 3 == 0:
                dispatch_due_messages(now)
            expected = expected_worklist(now)
            result = work.build_worklist(user, work.WorklistQuery(work.WorkFilter.ALL), now)
            shown = [(row.assessment.id, row.state, row.due_today) for row in result.rows]
            assert shown == expected, now
            counts: dict[str, Counter[str]] = {}
            for assessment_id, state, due in expected:
                timepoint = db.session.get(Assessment, assessment_id).timepoint  # type: ignore[union-attr]
                for section in work.COUNTED:
                    if work.matches(section, state, due):
                        counts.setdefault(timepoint, Counter())[section.value] += 1
            assert result.counts == counts, now
            if step % 5 == 0:
                for section in work.WorkFilter:
                    chosen = [row for row in expected if work.matches(section, row[1], row[2])]
                    query = work.WorklistQuery(section)
                    result = work.build_worklist(user, query, now)
                    assert result.total == len(chosen), (now, section)
                    if section != work.WorkFilter.FAILED:
                        rows = [(r.assessment.id, r.state, r.due_today) for r in result.rows]
                        assert rows == chosen, (now, section)
            db.session.rollback()


def test_pages_of_fifty(app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(work, "PAGE_SIZE", 3)
    signed_in(app, client)
    for number in range(1, 8):
        factories.enrol(app, f"MI01-{number:04d}")
    first = client.get("/staff/worklist?state=open").text
    assert len(codes_on(first)) == 3
    assert "page 1 of 3" in first
    assert 'rel="next"' in first
    third = client.get("/staff/worklist?state=open&page=3").text
    assert len(codes_on(third)) == 1
    seen = set()
    for page in (1, 2, 3):
        seen |= codes_on(client.get(f"/staff/worklist?state=open&page={page}").text)
    assert len(seen) == 7


def row_counts(app: Flask) -> dict[str, int]:
    with app.app_context():
        return {
            table.name: db.session.scalar(db.select(func.count()).select_from(table)) or 0
            for table in db.metadata.sorted_tables
        }


def test_get_requests_write_nothing(
    app: Flask, client: FlaskClient, known: dict[str, factories.Enrolled]
) -> None:
    signed_in(app, client)
    before = row_counts(app)
    for state in ("all", "open", "failed", "due_today", "overdue"):
        assert client.get(f"/staff/worklist?state={state}").status_code == 200
    for enrolled in known.values():
        client.get(f"/staff/patients/{enrolled.patient_id}")
    assert row_counts(app) == before
    with app.app_context():
        statuses = db.session.scalars(db.select(Assessment.status)).all()
    assert "open" not in statuses  # time-driven states are shown, not written, by the pages


def test_needs_sign_in(app: Flask, client: FlaskClient) -> None:
    response = client.get("/staff/worklist")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/sign-in")


def test_escape_like() -> None:
    assert work.escape_like("a%b_c\\") == "a\\%b\\_c\\\\"
