"""Planning and dispatching reminders: right messages, right time, right language, never twice."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

from flask import Flask
from flask.testing import FlaskCliRunner

from pro_app.extensions import db
from pro_app.messaging import DeliveryError
from pro_app.models import Assessment, Message, Patient
from pro_app.services import answering, audit
from pro_app.services.dispatch import dispatch_due_messages
from pro_app.services.links import hash_token
from pro_app.services.outbox import cancel_pending_messages
from pro_app.services.senders import senders
from tests import factories
from tests.factories import rome

# Randomized on Monday 2 March 2026: month 3 (days 77–105) spans no change, but baseline is in
# winter time and month 6 (days 168–196, August–September) in summer time.
RANDOMIZED = rome(2026, 3, 2, 11, 0)


def _messages(app: Flask) -> list[tuple[str, str, datetime]]:
    with app.app_context():
        rows = db.session.scalars(db.select(Message).order_by(Message.scheduled_for))
        return [(m.dedupe_key.split(":", 1)[1], m.status, m.scheduled_for) for m in rows]


def _sent_mail(app: Flask) -> list:  # type: ignore[type-arg]
    with app.app_context():
        return list(senders().email.sent)  # type: ignore[attr-defined]


def _dispatch(app: Flask, at: datetime) -> str:
    with app.app_context():
        return dispatch_due_messages(at.astimezone(UTC)).line()


def test_enrolment_plans_the_protocol_messages(app: Flask) -> None:
    factories.enrol(app, now=RANDOMIZED)
    planned = [(key, status, at.astimezone(factories.ROME)) for key, status, at in _messages(app)]
    assert [key for key, _, _ in planned] == [
        "baseline:invitation:email",
        "baseline:reminder_1:email",
        "baseline:last_call:email",
        "month3:invitation:email",
        "month3:reminder_1:email",
        "month3:reminder_2:email",
        "month3:last_call:email",
        "month6:invitation:email",
        "month6:reminder_1:email",
        "month6:reminder_2:email",
        "month6:last_call:email",
    ]
    assert all(status == "pending" for _, status, _ in planned)
    times = {key: at for key, _, at in planned}
    assert times["baseline:invitation:email"] == RANDOMIZED  # enrolled at 11:00: invite at once
    assert times["baseline:reminder_1:email"] == rome(2026, 3, 5, 10)
    assert times["baseline:last_call:email"] == rome(2026, 3, 7, 10)
    assert times["month3:invitation:email"] == rome(2026, 5, 18, 10)  # day 77
    assert times["month6:last_call:email"] == rome(2026, 9, 12, 10)  # day 196 − 2
    assert times["month6:last_call:email"].utcoffset() == timedelta(hours=2)  # summer time


def test_invitation_is_sent_in_the_patients_language_with_a_working_link(app: Flask) -> None:
    enrolled = factories.enrol(app, language="en", now=RANDOMIZED)
    summary = _dispatch(app, RANDOMIZED + timedelta(minutes=1))
    assert "sent 1" in summary
    [mail] = _sent_mail(app)
    assert mail.to == "mi01-0001@example.org"
    assert mail.subject == "Your questionnaire"
    assert "https://pro.example.test/p/" in mail.text
    assert mail.message_id.startswith("<outbox-")
    token = mail.text.split("https://pro.example.test/p/", 1)[1].split()[0]
    with app.app_context():
        patient = db.session.get(Patient, enrolled.patient_id)
        assert patient is not None
        assert hash_token(token) == patient_link_hash(patient)
    for forbidden in ("tumour", "tumor", "neuroendocrine", "NET", "TAE", "trial", "study"):
        assert forbidden not in mail.text.split()
        assert forbidden.lower() not in mail.subject.lower()


def patient_link_hash(patient: Patient) -> str:
    from pro_app.services.links import active_link

    link = active_link(patient)
    assert link is not None
    return link.token_hash


def test_nothing_is_sent_in_quiet_hours(app: Flask) -> None:
    late = rome(2026, 3, 2, 22, 15)
    factories.enrol(app, now=late)
    first = {key: at for key, _, at in _messages(app)}["baseline:invitation:email"]
    assert first == rome(2026, 3, 3, 9, 0)
    assert "sent 0" in _dispatch(app, late + timedelta(minutes=5))
    assert "sent 1" in _dispatch(app, rome(2026, 3, 3, 9, 0))


def test_a_message_due_during_quiet_hours_is_deferred_not_sent(app: Flask) -> None:
    factories.enrol(app, now=RANDOMIZED)
    # The dispatcher was down from 11:00 to 21:00: at 21:00 it must wait for 09:00.
    summary = _dispatch(app, rome(2026, 3, 2, 21, 0))
    assert "sent 0" in summary
    assert "deferred 1" in summary
    assert "sent 1" in _dispatch(app, rome(2026, 3, 3, 9, 0))


def test_completed_assessment_gets_no_reminder(app: Flask) -> None:
    enrolled = factories.enrol(app, now=RANDOMIZED)
    _dispatch(app, RANDOMIZED)
    with app.app_context():
        assessment = db.session.scalar(
            db.select(Assessment).where(
                Assessment.patient_id == enrolled.patient_id, Assessment.timepoint == "baseline"
            )
        )
        assert assessment is not None
        answering.store_answers(
            assessment,
            {"qlq_c30-1": 2},
            now=RANDOMIZED + timedelta(hours=1),
            actor=audit.SYSTEM,
        )
        answering.submit(assessment, RANDOMIZED + timedelta(hours=2), audit.SYSTEM)
        db.session.commit()
    statuses = {key: status for key, status, _ in _messages(app)}
    assert statuses["baseline:reminder_1:email"] == "cancelled"
    assert statuses["baseline:last_call:email"] == "cancelled"
    assert statuses["month3:invitation:email"] == "pending"
    for day in range(1, 10):
        _dispatch(app, RANDOMIZED + timedelta(days=day))
    assert len(_sent_mail(app)) == 1


def test_partial_responder_is_asked_to_continue(app: Flask) -> None:
    enrolled = factories.enrol(app, now=RANDOMIZED)
    _dispatch(app, RANDOMIZED)
    with app.app_context():
        assessment = db.session.scalar(
            db.select(Assessment)
            .where(Assessment.patient_id == enrolled.patient_id)
            .where(Assessment.timepoint == "baseline")
        )
        assert assessment is not None
        answering.store_answers(
            assessment, {"qlq_c30-1": 2}, now=RANDOMIZED + timedelta(hours=1), actor=audit.SYSTEM
        )
        db.session.commit()
    _dispatch(app, rome(2026, 3, 5, 10, 0))
    reminder = _sent_mail(app)[-1]
    assert reminder.subject == "Promemoria: il Suo questionario"
    assert "Lo ha già iniziato: il link La riporta da dove si era fermato/a." in reminder.text


def test_withdrawn_patient_gets_nothing_more(app: Flask) -> None:
    enrolled = factories.enrol(app, now=RANDOMIZED)
    with app.app_context():
        patient = db.session.get(Patient, enrolled.patient_id)
        assert patient is not None
        patient.status, patient.withdrawn_on = "withdrawn", date(2026, 3, 2)
        assert cancel_pending_messages(patient, "patient withdrawn") == 11
        db.session.commit()
    for day in (0, 3, 5, 77, 80, 168):
        assert "sent 0" in _dispatch(app, RANDOMIZED + timedelta(days=day, minutes=1))


def test_window_closing_unanswered_marks_the_assessment_missed(app: Flask) -> None:
    factories.enrol(app, now=RANDOMIZED)
    summary = _dispatch(app, rome(2026, 3, 10, 12, 0))  # baseline closed at the end of 9 March
    assert "missed 1" in summary
    with app.app_context():
        rows = db.session.execute(db.select(Assessment.timepoint, Assessment.status))
        statuses = {timepoint: status for timepoint, status in rows}
    assert statuses["baseline"] == "missed"
    keys = {key: status for key, status, _ in _messages(app)}
    assert keys["baseline:reminder_1:email"] == "cancelled"  # its window had closed


def test_temporary_failures_retry_with_backoff_then_succeed(app: Flask) -> None:
    factories.enrol(app, now=RANDOMIZED)
    with app.app_context():
        senders().email.fail_with = DeliveryError("SMTP connection refused", permanent=False)  # type: ignore[attr-defined]
    assert "retrying 1" in _dispatch(app, RANDOMIZED)
    assert "claimed 0" in _dispatch(app, RANDOMIZED + timedelta(seconds=30))  # not yet due
    with app.app_context():
        message = db.session.scalar(
            db.select(Message).where(Message.dedupe_key.endswith(":baseline:invitation:email"))
        )
        assert message is not None
        assert message.last_error == "SMTP connection refused"
        senders().email.fail_with = None  # type: ignore[attr-defined]
    assert "sent 1" in _dispatch(app, RANDOMIZED + timedelta(minutes=2))
    assert len(_sent_mail(app)) == 1


def test_permanent_failure_is_recorded_and_not_retried(app: Flask) -> None:
    factories.enrol(app, now=RANDOMIZED)
    with app.app_context():
        senders().email.fail_with = DeliveryError("SMTP 550 recipient refused", permanent=True)  # type: ignore[attr-defined]
    assert "failed 1" in _dispatch(app, RANDOMIZED)
    with app.app_context():
        senders().email.fail_with = None  # type: ignore[attr-defined]
    assert "claimed 0" in _dispatch(app, RANDOMIZED + timedelta(hours=3))
    statuses = {key: status for key, status, _ in _messages(app)}
    assert statuses["baseline:invitation:email"] == "failed"


def test_sms_patient_gets_a_short_text(app: Flask) -> None:
    factories.enrol(app, now=RANDOMIZED, email=None, mobile="347 123 4567", channel="sms")
    assert "sent 1" in _dispatch(app, RANDOMIZED)
    with app.app_context():
        [sms] = senders().sms.sent  # type: ignore[attr-defined]
    assert sms.to == "+393471234567"
    assert len(sms.text) <= 160
    assert "https://pro.example.test/p/" in sms.text


def test_two_concurrent_passes_never_send_twice(app: Flask) -> None:
    for n in range(30):
        factories.enrol(app, f"MI01-{n:04d}", now=RANDOMIZED)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            _dispatch(app, RANDOMIZED + timedelta(minutes=1))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    sent = _sent_mail(app)
    assert len(sent) == 30
    assert len({mail.message_id for mail in sent}) == 30


def test_reminders_run_command_prints_a_summary(app: Flask, runner: FlaskCliRunner) -> None:
    factories.enrol(app, now=RANDOMIZED)
    result = runner.invoke(args=["reminders", "run", "--now", "2026-03-02T11:05:00+01:00"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "opened 1, missed 0, claimed 1, sent 1, deferred 0, cancelled 0, retrying 0, failed 0"
    )
    bad = runner.invoke(args=["reminders", "run", "--now", "yesterday"])
    assert bad.exit_code == 2
    naive = runner.invoke(args=["reminders", "run", "--now", "2026-03-02T11:05:00"])
    assert naive.exit_code == 2


def test_scheduler_lease_lets_one_process_send(app: Flask) -> None:
    from pro_app.scheduler import LEASE_DURATION, acquire_lease, release_lease

    now = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    with app.app_context():
        assert acquire_lease("host:1", now)
        assert not acquire_lease("host:2", now + timedelta(seconds=30))
        assert acquire_lease("host:1", now + timedelta(minutes=1))  # renewal
        assert not acquire_lease("host:2", now + timedelta(minutes=2))
        later = now + timedelta(minutes=1) + LEASE_DURATION
        assert acquire_lease("host:2", later)  # the first holder died: the lease expired
        release_lease("host:2", later)
        assert acquire_lease("host:1", later)
