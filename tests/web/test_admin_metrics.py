"""The administrator's status page: the figures of a prepared situation, admins only, and a
number of statements that does not grow with the number of patients."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, update

from pro_app.extensions import db
from pro_app.messaging import DeliveryError
from pro_app.models import Assessment, Message, SchedulerLease, StaffUser
from pro_app.services import answering, audit
from pro_app.services.dispatch import DispatchSummary, dispatch_due_messages
from pro_app.services.senders import senders
from pro_app.staff import metrics as metrics_view
from tests import factories
from tests.factories import rome

LAST_PASS = DispatchSummary(opened=1, claimed=3, sent=2, deferred=0, retrying=1)
RANDOMIZED = rome(2026, 3, 2, 11, 0)
NOW = rome(2026, 3, 2, 11, 5)  # the instant the page is looked at


@pytest.fixture
def admin(app: Flask, monkeypatch: pytest.MonkeyPatch) -> FlaskClient:
    """An administrator (reading English) signed in, looking at the page at NOW."""
    monkeypatch.setattr(metrics_view, "utcnow", lambda: NOW.astimezone(UTC))
    factories.staff_user(app, "admin@example.org", "admin", None, language="en")
    client = app.test_client()
    assert factories.sign_in(client, "admin@example.org").status_code == 302
    return client


def _dispatch(app: Flask, at: datetime, failure: DeliveryError | None = None) -> None:
    with app.app_context():
        senders().email.fail_with = failure  # type: ignore[attr-defined]
        dispatch_due_messages(at.astimezone(UTC))
        senders().email.fail_with = None  # type: ignore[attr-defined]


def _complete_baseline(app: Flask, patient_id: int, at: datetime) -> None:
    with app.app_context():
        assessment = db.session.scalar(
            db.select(Assessment).where(
                Assessment.patient_id == patient_id, Assessment.timepoint == "baseline"
            )
        )
        assert assessment is not None
        answering.store_answers(assessment, {"qlq_c30-1": 2}, now=at, actor=audit.SYSTEM)
        answering.submit(assessment, at, audit.SYSTEM)
        db.session.commit()


def _prepare(app: Flask) -> None:
    """Six patients, a message in each state, a scheduler lease and two locks."""
    a = factories.enrol(app, "MI01-000A", now=RANDOMIZED)
    _dispatch(app, RANDOMIZED)  # A's invitation sent
    _complete_baseline(app, a.patient_id, RANDOMIZED + timedelta(minutes=2))
    factories.enrol(app, "MI01-000B", now=RANDOMIZED + timedelta(minutes=1))
    _dispatch(
        app,
        RANDOMIZED + timedelta(minutes=1),
        DeliveryError("SMTP 550 5.1.1 recipient refused", permanent=True),
    )  # B's invitation failed for good at 11:01
    factories.enrol(app, "MI01-000C", now=RANDOMIZED + timedelta(minutes=2))
    _dispatch(
        app,
        RANDOMIZED + timedelta(minutes=2),
        DeliveryError("SMTP connection refused", permanent=False),
    )  # C's invitation is tried again from 11:03
    factories.enrol(app, "MI01-000D", now=RANDOMIZED + timedelta(minutes=4))  # waiting
    factories.enrol(
        app,
        "MI01-000E",
        now=RANDOMIZED + timedelta(minutes=4),
        email=None,
        mobile="347 123 4567",
        channel="sms",
    )  # waiting, by SMS
    # Randomized 20 days before: baseline's window has closed unanswered (expected, missed).
    factories.enrol(app, "MI01-000M", now=NOW, days_since_randomization=20)
    with app.app_context():
        # A failure three days ago: counted as failed, not among the last 24 hours'.
        db.session.execute(
            update(Message)
            .where(Message.dedupe_key.endswith(":month6:invitation:email"))
            .where(Message.patient_id == a.patient_id)
            .values(status="failed", next_attempt_at=NOW - timedelta(days=3))
        )
        db.session.add(_recent_lease(LAST_PASS.line()))
        db.session.commit()
    factories.staff_user(app, "locked@mi01.example.org", "nurse", "MI01")
    factories.staff_user(app, "was-locked@mi01.example.org", "nurse", "MI01")
    with app.app_context():
        for email, until in (
            ("locked@mi01.example.org", NOW + timedelta(minutes=10)),
            ("was-locked@mi01.example.org", NOW - timedelta(hours=1)),
        ):
            db.session.execute(
                update(StaffUser).where(StaffUser.email == email).values(locked_until=until)
            )
        db.session.commit()


def _recent_lease(summary: str) -> SchedulerLease:
    """The scheduler's lease as a pass 40 seconds ago left it, with this summary."""
    return SchedulerLease(
        name="dispatcher",
        holder="clinic-server:4242",
        expires_at=NOW + timedelta(minutes=2),
        last_run_at=NOW - timedelta(seconds=40),
        last_summary=summary,
    )


def _by_id(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</(?:dd|p)>', html, re.DOTALL)
    assert match, element_id
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def test_the_figures_match_the_prepared_situation(app: Flask, admin: FlaskClient) -> None:
    _prepare(app)
    figures = admin.get("/staff/admin/metrics.json").get_json()
    rows = {(row["channel"], row["kind"]): row for row in figures["outbox"]["rows"]}
    invitations = rows[("email", "invitation")]
    assert invitations["due"] == 2  # C (after its failure) and D
    assert invitations["retrying"] == 1  # C
    assert invitations["sending"] == 0
    assert invitations["failed"] == 2  # B, and A's month-6 invitation three days ago
    assert invitations["failed_last_day"] == 1  # B
    # Month 3 and month 6 of A, B, C, D and M, but A's month 6 (failed).
    assert invitations["planned"] == 9
    assert rows[("sms", "invitation")]["due"] == 1  # E
    assert rows[("sms", "invitation")]["planned"] == 2
    total = figures["outbox"]["total"]
    assert (total["due"], total["failed"], total["failed_last_day"]) == (3, 2, 1)
    assert total["planned"] == sum(row["planned"] for row in rows.values()) > 0
    assert figures["outbox"]["oldest_due_age_seconds"] == 120.0  # C, due since 11:03
    assert figures["outbox"]["oldest_due_at"] == "2026-03-02T10:03:00+00:00"
    scheduler = figures["scheduler"]
    assert scheduler["state"] == "ok"
    assert scheduler["holder"] == "clinic-server:4242"
    assert scheduler["last_run_at"] == "2026-03-02T10:04:20+00:00"
    assert scheduler["last_pass"] == {
        "opened": 1, "missed": 0, "claimed": 3, "sent": 2,
        "deferred": 0, "cancelled": 0, "retrying": 1, "failed": 0,
    }  # fmt: skip
    completion = {row["timepoint"]: row for row in figures["completion"]}
    assert completion["baseline"] == {
        "timepoint": "baseline",
        "expected": 2,  # A completed, M missed
        "completed": 1,
        "pending": 4,  # B, C, D, E: their windows are open
        "rate": 50.0,
    }
    assert completion["month3"]["expected"] == 0
    assert completion["month3"]["pending"] == 6
    assert completion["month3"]["rate"] is None
    assert figures["locked_accounts"] == 1
    assert figures["database"]["latest_revisions"]

    html = admin.get("/staff/admin/metrics").text
    assert "<h1>System status</h1>" in html
    assert _by_id(html, "messages-due") == "3"
    assert _by_id(html, "failed-last-day") == "1"
    assert _by_id(html, "locked-accounts") == "1"
    assert _by_id(html, "oldest-due") == "due 2 minutes ago"
    assert 'id="scheduler-late"' not in html
    assert 'id="scheduler-never"' not in html
    assert "clinic-server:4242" in html
    assert _by_id(html, "last-pass") == (
        "questionnaires opened 1, questionnaires closed unanswered 0, messages taken up 3, "
        "messages sent 2, messages postponed (quiet hours) 0, messages cancelled 0, "
        "messages to be retried 1, messages failed for good 0"
    )
    assert "50.0%" in html  # baseline's completion rate
    # Nothing personal on the page: study codes and contacts are not its business.
    for private in ("MI01-000", "@example.org", "347"):
        assert private not in html


def test_a_pass_summary_is_read_back_and_an_unknown_one_is_shown_as_written(
    app: Flask, admin: FlaskClient
) -> None:
    assert DispatchSummary.from_line(LAST_PASS.line()) == LAST_PASS
    for unknown in ("", "opened 1, exploded 2", "opened one", "opened=1 sent=2"):
        assert DispatchSummary.from_line(unknown) is None
    with app.app_context():
        db.session.add(_recent_lease("opened=1 sent=2"))
        db.session.commit()
    html = admin.get("/staff/admin/metrics").text
    assert _by_id(html, "last-pass") == "opened=1 sent=2"
    assert admin.get("/staff/admin/metrics.json").get_json()["scheduler"]["last_pass"] is None


def test_the_database_and_its_migration_are_named(app: Flask, admin: FlaskClient) -> None:
    figures = admin.get("/staff/admin/metrics.json").get_json()
    with app.app_context():
        dialect = db.engine.dialect.name
        has_version_table = db.inspect(db.engine).has_table("alembic_version")
    database = figures["database"]
    assert database["dialect"] == dialect
    if has_version_table:  # PostgreSQL: the schema was made by the migrations
        assert database["applied_revisions"] == database["latest_revisions"]
        assert database["is_up_to_date"] is True
    else:  # SQLite tests use create_all
        assert database["applied_revisions"] == []
        html = admin.get("/staff/admin/metrics").text
        assert "not recorded (schema created without migrations)" in html


def test_a_late_scheduler_shows_a_warning_banner(app: Flask, admin: FlaskClient) -> None:
    with app.app_context():
        db.session.add(
            SchedulerLease(
                name="dispatcher",
                holder="clinic-server:4242",
                expires_at=NOW - timedelta(minutes=5),
                last_run_at=NOW - timedelta(minutes=10),
                last_summary=None,
            )
        )
        db.session.commit()
    html = admin.get("/staff/admin/metrics").text
    banner = _by_id(html, "scheduler-late")
    assert banner.startswith("The scheduler has not run since ")
    assert "10:55" in banner  # the last pass in Rome's time (09:55 UTC)
    assert admin.get("/staff/admin/metrics.json").get_json()["scheduler"]["state"] == "late"


def test_a_scheduler_that_never_ran_is_said_plainly(app: Flask, admin: FlaskClient) -> None:
    html = admin.get("/staff/admin/metrics").text
    assert _by_id(html, "scheduler-never").startswith("The scheduler has never run")
    assert _by_id(html, "scheduler-state") == "Never run"
    assert "No message is waiting, being sent or failed." in html


def test_admins_see_it_in_their_menu(admin: FlaskClient) -> None:
    assert 'href="/staff/admin/metrics"' in admin.get("/staff/worklist").text


@pytest.mark.parametrize("role", ["nurse", "investigator", "analyst"])
def test_other_roles_are_refused(app: Flask, role: str) -> None:
    site = None if role == "analyst" else "MI01"
    factories.staff_user(app, f"{role}@example.org", role, site)
    client = app.test_client()
    assert factories.sign_in(client, f"{role}@example.org").status_code == 302
    assert client.get("/staff/admin/metrics").status_code == 403
    assert client.get("/staff/admin/metrics.json").status_code == 403
    assert 'href="/staff/admin/metrics"' not in client.get("/staff/worklist").text


def test_anonymous_visitors_are_sent_to_sign_in(client: FlaskClient) -> None:
    for path in ("/staff/admin/metrics", "/staff/admin/metrics.json"):
        response = client.get(path)
        assert response.status_code == 302
        assert "/auth/sign-in" in response.headers["Location"]


class StatementCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *_args: Any, **_kwargs: Any) -> None:
        self.count += 1


@pytest.fixture
def statements(app: Flask) -> Iterator[StatementCounter]:
    counter = StatementCounter()
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", counter)
    yield counter
    event.remove(engine, "before_cursor_execute", counter)


def _statements_for(client: FlaskClient, path: str, counter: StatementCounter) -> int:
    before = counter.count
    response = client.get(path)
    assert response.status_code == 200
    return counter.count - before


def _enrol_many(app: Flask, first: int, last: int) -> None:
    for n in range(first, last):
        enrolled = factories.enrol(
            app, f"MI01-{n:04d}", now=RANDOMIZED, days_since_randomization=n % 5
        )
        if n % 3 == 0:
            _complete_baseline(app, enrolled.patient_id, RANDOMIZED)


def test_the_number_of_statements_does_not_grow_with_patients(
    app: Flask, admin: FlaskClient, statements: StatementCounter
) -> None:
    _enrol_many(app, 0, 5)
    _dispatch(app, RANDOMIZED)
    few = [_statements_for(admin, path, statements) for path in ("/staff/admin/metrics",) * 2]
    few_json = _statements_for(admin, "/staff/admin/metrics.json", statements)
    _enrol_many(app, 5, 25)
    _dispatch(app, RANDOMIZED, DeliveryError("SMTP timeout", permanent=False))
    many = _statements_for(admin, "/staff/admin/metrics", statements)
    many_json = _statements_for(admin, "/staff/admin/metrics.json", statements)
    assert many == few[-1]
    assert many_json == few_json
    with app.app_context():
        assessments = db.session.scalar(db.select(db.func.count()).select_from(Assessment))
    assert assessments == 25 * 3
    print(f"metrics page: {many} statements for 5 and for 25 patients (JSON: {many_json})")
