"""Seven months of reminders for 300 patients through a real SMTP server, message by message.

Patients are enrolled over two months around the March daylight-saving change and followed past
the October one. Some complete at the invitation, some after a reminder, some start and stop,
some never answer, some withdraw, one dies. The mail received must be exactly what the schedule
implies: nothing twice, nothing to someone who completed, withdrew or died, nothing in quiet hours,
nothing after day 196, everything in the patient's language. Run with one dispatcher and with two
running at the same instant.
"""

from __future__ import annotations

import email
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message as MimeMessage
from zoneinfo import ZoneInfo

import pytest
from flask import Flask

from pro_app.extensions import db
from pro_app.models import Assessment, Message, Patient
from pro_app.protocol.reminders import is_quiet, plan_messages
from pro_app.protocol.windows import plan_windows
from pro_app.services import answering, audit, patient_status
from pro_app.services.definitions import trial_schedule
from pro_app.services.dispatch import dispatch_due_messages
from tests import factories
from tests.conftest import make_config
from tests.smtp_server import Inbox, running_smtp

PATIENTS = 300
FIRST_DAY = datetime(2026, 2, 2, 0, 0, tzinfo=UTC)
PASS_EVERY = timedelta(hours=2)
SIMULATED = timedelta(days=7 * 30 + 30)  # enrolment spread over a month, then 7 months each
TIMEZONES = ("Europe/Rome", "Europe/Rome", "Europe/Rome", "Europe/London")
BEHAVIOURS = ("at_invitation", "after_reminder", "partial", "never", "withdraws")


@pytest.fixture
def smtp_server():  # type: ignore[no-untyped-def]
    inbox = Inbox()
    with running_smtp(inbox) as port:
        yield inbox, port


@pytest.fixture
def app_config(database_uri: str, smtp_server) -> dict:  # type: ignore[no-untyped-def]
    _inbox, port = smtp_server
    return make_config(
        database_uri, MAIL_BACKEND="smtp", MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_TIMEOUT=5
    )


@dataclass
class SimPatient:
    number: int
    behaviour: str
    timezone: str
    language: str
    enrolled_at: datetime
    patient_id: int = 0
    stops_at: dict[str, datetime] = field(default_factory=dict)  # time point → completion
    leaves_at: datetime | None = None  # withdrawal or death


def _patients(rng: random.Random) -> list[SimPatient]:
    patients = []
    for number in range(PATIENTS):
        tz = TIMEZONES[number % len(TIMEZONES)]
        day = FIRST_DAY + timedelta(days=rng.randrange(0, 60))
        local = datetime(
            day.year,
            day.month,
            day.day,
            rng.randrange(8, 22),
            rng.randrange(0, 60),
            tzinfo=ZoneInfo(tz),
        )
        patients.append(
            SimPatient(
                number=number,
                behaviour="dies" if number == 7 else BEHAVIOURS[number % len(BEHAVIOURS)],
                timezone=tz,
                language="en" if number % 3 == 0 else "it",
                enrolled_at=local.astimezone(UTC),
            )
        )
    return patients


def _pass_times() -> list[datetime]:
    times, t = [], FIRST_DAY
    while t < FIRST_DAY + SIMULATED:
        times.append(t)
        t += PASS_EVERY
    return times


def _first_pass_sending(at: datetime, tz: ZoneInfo, passes: list[datetime]) -> datetime | None:
    plan = trial_schedule().reminders
    return next((p for p in passes if p >= at and not is_quiet(p, plan, tz)), None)


def _expected(app: Flask, patients: list[SimPatient], passes: list[datetime]) -> Counter:
    """The messages the schedule implies, given when each patient stopped needing them."""
    expected: Counter = Counter()
    with app.app_context():
        schedule = trial_schedule()
        for sim in patients:
            tz = ZoneInfo(sim.timezone)
            randomized_on = sim.enrolled_at.astimezone(tz).date()
            for window in plan_windows(schedule, randomized_on, randomized_on):
                stop = min(
                    t
                    for t in (
                        sim.stops_at.get(window.timepoint),
                        sim.leaves_at,
                        window.closes_at(tz),
                    )
                    if t is not None
                )
                for planned in plan_messages(schedule, window, tz, not_before=sim.enrolled_at):
                    sent_at = _first_pass_sending(planned.send_at, tz, passes)
                    if sent_at is not None and sent_at < stop:
                        expected[(sim.number, window.timepoint, planned.kind)] += 1
    return expected


def _complete(app: Flask, sim: SimPatient, timepoint: str, at: datetime, submit: bool) -> None:
    with app.app_context():
        assessment = db.session.scalar(
            db.select(Assessment).where(
                Assessment.patient_id == sim.patient_id, Assessment.timepoint == timepoint
            )
        )
        assert assessment is not None
        answering.store_answers(
            assessment, {"qlq_c30-1": 2, "qlq_c30-2": 3}, now=at, actor=audit.SYSTEM
        )
        if submit:
            answering.submit(assessment, at, audit.SYSTEM)
            sim.stops_at[timepoint] = at
        db.session.commit()


def _leave(app: Flask, sim: SimPatient, at: datetime) -> None:
    with app.app_context():
        patient = db.session.get(Patient, sim.patient_id)
        assert patient is not None
        on = at.astimezone(ZoneInfo(sim.timezone)).date()
        if sim.behaviour == "dies":
            patient_status.record_death(patient, on, at, audit.SYSTEM)
        else:
            patient_status.withdraw(patient, on, "no longer wishes to take part", at, audit.SYSTEM)
        db.session.commit()
    sim.leaves_at = at


@pytest.mark.parametrize("dispatchers", [1, 2])
def test_seven_months_of_reminders_are_exactly_the_schedule(  # type: ignore[no-untyped-def]
    app: Flask, smtp_server, dispatchers: int
) -> None:
    inbox, _port = smtp_server
    rng = random.Random(1956)
    patients = _patients(rng)
    by_outbox_id: dict[int, tuple[int, str, str]] = {}
    for sim in patients:
        enrolled = factories.enrol(
            app,
            f"SIM-{sim.number:04d}",
            now=sim.enrolled_at,
            language=sim.language,
            timezone=sim.timezone,
        )
        sim.patient_id = enrolled.patient_id
    by_patient = {sim.patient_id: sim for sim in patients}
    passes = _pass_times()
    events: list[tuple[datetime, SimPatient, str, str]] = []
    received: list[tuple[int, str, str, datetime, MimeMessage]] = []

    for now in passes:
        for event in sorted((e for e in events if e[0] <= now), key=lambda e: (e[0], e[1].number)):
            at, sim, action, timepoint = event
            events.remove(event)
            if sim.leaves_at is not None:
                continue
            if action in ("complete", "start"):
                _complete(app, sim, timepoint, at, submit=action == "complete")
            else:
                _leave(app, sim, at)
        _run_passes(app, now, dispatchers)
        for mime in inbox.drain():
            outbox_id = int(mime["Message-ID"].split("-", 1)[1].split("@", 1)[0])
            if outbox_id not in by_outbox_id:
                with app.app_context():
                    row = db.session.get(Message, outbox_id)
                    assert row is not None
                    _pid, timepoint, kind, _channel = row.dedupe_key.split(":")
                    by_outbox_id[outbox_id] = (row.patient_id, timepoint, kind)
            patient_id, timepoint, kind = by_outbox_id[outbox_id]
            sim = by_patient[patient_id]
            received.append((sim.number, timepoint, kind, now, mime))
            events += _reaction(sim, timepoint, kind, now)

    counts = Counter((number, timepoint, kind) for number, timepoint, kind, _, _ in received)
    assert max(counts.values()) == 1, "a message was delivered twice"
    assert counts == _expected(app, patients, passes)
    for number, timepoint, kind, sent_at, mime in received:
        sim = patients[number]
        tz = ZoneInfo(sim.timezone)
        local = sent_at.astimezone(tz)
        assert 9 <= local.hour < 20, (number, kind, local)
        assert sim.leaves_at is None or sent_at < sim.leaves_at
        assert timepoint not in sim.stops_at or sent_at < sim.stops_at[timepoint]
        day = (local.date() - sim.enrolled_at.astimezone(tz).date()).days
        assert day <= 196
        subject = str(email.header.make_header(email.header.decode_header(mime["Subject"])))
        italian = subject in (
            "Il Suo questionario",
            "Promemoria: il Suo questionario",
            "Ultimi giorni per compilare il Suo questionario",
        )
        assert italian == (sim.language == "it"), (subject, sim.language)
    assert any(s.behaviour == "dies" and s.leaves_at for s in patients)
    assert len(received) > 1500


def _reaction(sim: SimPatient, timepoint: str, kind: str, now: datetime) -> list:  # type: ignore[type-arg]
    """What this patient does after receiving this message (an hour later)."""
    later = now + timedelta(hours=1)
    if sim.behaviour == "dies" and timepoint == "month3" and kind == "invitation":
        return [(later + timedelta(days=2), sim, "leave", timepoint)]
    if sim.behaviour in ("at_invitation", "dies") and kind == "invitation":
        return [(later, sim, "complete", timepoint)]
    if sim.behaviour == "after_reminder" and kind == "reminder_1":
        return [(later, sim, "complete", timepoint)]
    if sim.behaviour == "partial" and kind == "invitation":
        return [(later, sim, "start", timepoint)]
    if sim.behaviour == "withdraws" and timepoint == "month3" and kind == "invitation":
        return [(later + timedelta(days=1), sim, "leave", timepoint)]
    return []


def _run_passes(app: Flask, now: datetime, dispatchers: int) -> None:
    if dispatchers == 1:
        with app.app_context():
            dispatch_due_messages(now)
        return
    barrier = threading.Barrier(dispatchers)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            with app.app_context():
                dispatch_due_messages(now)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(dispatchers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
