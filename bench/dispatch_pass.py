"""Cost of ONE dispatcher pass (`dispatch_due_messages`) as the trial grows: time, SQL, memory.

Run from the project folder:

    .venv/bin/python bench/dispatch_pass.py [--postgres URI] [--large]

For N = 1,000 and 10,000 enrolled patients (100,000 with --large) it builds a database on SQLite
(a temporary file) and, when --postgres URI or PRO_BENCH_POSTGRES_URI is given, on PostgreSQL
(that database's `public` schema is dropped and created again, before and after), then measures
one pass at a fixed instant and prints: messages due, sent, seconds, SQL statements, commits
and the pass's peak Python memory (tracemalloc).

Target: the statement count is constant in N. Every due message costs its own statements (the
dispatcher records each result at once), so a pass with ~3 % of patients due must grow with N;
what must not grow is the cost of the patients who are not due. Each database is therefore
measured twice at the same instant:
  * "all due": every message that is due, as a real pass would find it;
  * "K due":   the same pass with only the first K of those messages due (the same K messages
               for every N: patients are generated from per-patient seeds, so 1k is a prefix
               of 10k). Its statement count must be identical for every N.
The verdict compares the "K due" counts, and the statements per extra due message
((all - K) statements / (all - K) messages) across N.

The data: patients randomized 1-200 days before the measured instant (all in Europe/Rome),
enrolled on that day, 3 % withdrawn since. Rows are written in bulk but are the rows the services
write (patient, contact, assessments from plan_windows, link from derive_token/hash_token, outbox
rows from outbox.planned_rows, audit events); before loading, a sample of patients is enrolled
through enroll_patient() and compared field by field with the generator, then rolled back.
History is then played up to the last pass at 23:55 the evening before: 70 % of assessments
completed at some moment of their window (later messages cancelled, as submit() does), windows
closed since then missed, messages due before then sent. The measured pass runs at 10:05 local
time: it opens the windows that opened at midnight, marks missed those that closed, and sends
the invitations and reminders of 10:00 (memory mail and SMS backends, no network). Answers and
scores of completed assessments are not created: the dispatcher never reads them.

Each pass is run twice from the same state (the rows it touches are saved and put back): once
for the time, once under tracemalloc for the memory peak and the statements' origins. Shared
machines are noisy: compare figures of one run with each other, not with another run's.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import random
import re
import sys
import tempfile
import time as clock
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flask import Flask
from sqlalchemy import event, insert, or_, text, update

from pro_app import create_app
from pro_app.extensions import db
from pro_app.models import (
    ActorType,
    Assessment,
    AssessmentStatus,
    AuditEvent,
    Message,
    MessageStatus,
    Patient,
    PatientContact,
    PatientLink,
    PatientStatus,
    Site,
)
from pro_app.models.assessment import ANSWERABLE_STATUSES
from pro_app.protocol.schedule import Schedule
from pro_app.protocol.windows import local_instant, participation_ends_at, plan_windows
from pro_app.services import assessment_states, dispatch
from pro_app.services.contact_formats import normalize_email, normalize_mobile
from pro_app.services.definitions import trial_schedule
from pro_app.services.enrolment import EnrolmentRequest, enroll_patient
from pro_app.services.links import derive_token, hash_token
from pro_app.services.outbox import planned_rows
from pro_app.services.senders import senders

ROME = ZoneInfo("Europe/Rome")
SIZES = (1_000, 10_000)
LARGE_SIZE = 100_000
FIXED_DUE = 20  # the "K due" pass
# The measured pass, and the last pass before it (the state the database is left in).
NOW = datetime(2026, 3, 10, 10, 5, tzinfo=ROME).astimezone(UTC)
PREVIOUS_PASS = datetime(2026, 3, 9, 23, 55, tzinfo=ROME).astimezone(UTC)
OLDEST_DAYS = 200
WITHDRAWN_SHARE = 0.03
COMPLETED_SHARE = 0.70
IN_PROGRESS_SHARE = 0.20  # of the windows open and not completed
LOAD_CHUNK = 2_000  # patients generated and inserted per transaction
CHECK_PATIENTS = 40  # enrolled through the real service to validate the generator
SECRET_KEY = "dispatch-bench-secret-key-" + "x" * 32
MAIL_SENDER = "Questionari <questionari@pro.example.test>"


def make_config(database_uri: str) -> dict[str, Any]:
    """The tests' configuration (tests/conftest.py make_config), memory backends included."""
    return {
        "ENV": "development",
        "TESTING": True,
        "SECRET_KEY": SECRET_KEY,
        "SQLALCHEMY_DATABASE_URI": database_uri,
        "BASE_URL": "https://pro.example.test",
        "MAIL_BACKEND": "memory",
        "SMS_BACKEND": "memory",
        "MAIL_SENDER": MAIL_SENDER,
    }


# --------------------------------------------------------------------------- the patients


@dataclass(frozen=True)
class PatientSpec:
    """One synthetic patient; drawn from its own seed, so patient i is the same for every N."""

    index: int
    study_code: str
    arm: str
    randomized_on: date
    enrolled_at: datetime
    language: str
    email: str | None
    mobile: str | None
    preferred_channel: str
    birth_year: int
    withdrawn_at: datetime | None


def patient_spec(index: int) -> tuple[PatientSpec, random.Random]:
    rng = random.Random(f"dispatch-bench-{index}")
    today = NOW.astimezone(ROME).date()
    randomized_on = today - timedelta(days=rng.randint(1, OLDEST_DAYS))
    enrolled_at = local_instant(randomized_on, time(rng.randint(9, 17), rng.randrange(60)), ROME)
    roll = rng.random()
    email = f"p{index:06d}@example.invalid"
    mobile = f"+39 347 {index:07d}"
    if roll < 0.6:
        contacts: tuple[str | None, str | None, str] = (email, None, "email")
    elif roll < 0.8:
        contacts = (email, mobile, "email")
    else:
        contacts = (None, mobile, "sms")
    withdrawn_at = None
    if rng.random() < WITHDRAWN_SHARE:
        days = (today - randomized_on).days
        withdrawn_at = local_instant(
            randomized_on + timedelta(days=rng.randrange(days)), time(12), ROME
        )
    spec = PatientSpec(
        index=index,
        study_code=f"BN-{index:06d}",
        arm=rng.choice(("tae", "control")),
        randomized_on=randomized_on,
        enrolled_at=enrolled_at,
        language="en" if rng.random() < 0.1 else "it",
        email=contacts[0],
        mobile=contacts[1],
        preferred_channel=contacts[2],
        birth_year=rng.randint(1940, 1990),
        withdrawn_at=withdrawn_at,
    )
    return spec, rng


@dataclass
class EnrolmentRows:
    """The rows enroll_patient() writes for one patient, as dicts for a bulk INSERT."""

    patient: dict[str, Any]
    contact: dict[str, Any]
    assessments: list[dict[str, Any]]
    link: dict[str, Any]
    messages: list[dict[str, Any]]
    audit: list[dict[str, Any]] = field(default_factory=list)


def enrolment_rows(
    spec: PatientSpec,
    schedule: Schedule,
    site_id: int,
    patient_id: int,
    assessment_ids: list[int],
    link_id: int,
    salt: str,
) -> EnrolmentRows:
    """What enroll_patient(spec, now=spec.enrolled_at) writes, computed by the same functions."""
    tz = ROME
    contact = {
        "patient_id": patient_id,
        "email": normalize_email(spec.email),
        "mobile": normalize_mobile(spec.mobile),
        "preferred_channel": spec.preferred_channel,
        "birth_year": spec.birth_year,
    }
    patient = {
        "id": patient_id,
        "study_code": spec.study_code,
        "site_id": site_id,
        "arm": spec.arm,
        "randomized_on": spec.randomized_on,
        "enrolled_at": spec.enrolled_at,
        "enrolled_by_id": None,
        "language": spec.language,
        "timezone": tz.key,
        "status": PatientStatus.ACTIVE.value,
        "is_reminders_paused": False,
        "withdrawn_on": None,
        "withdrawal_reason": None,
        "died_on": None,
    }
    enrolled_on = spec.enrolled_at.astimezone(tz).date()
    windows = plan_windows(schedule, spec.randomized_on, enrolled_on)
    assessments = [
        {
            "id": assessment_id,
            "patient_id": patient_id,
            "timepoint": window.timepoint,
            "target_on": window.target_on,
            "window_opens_on": window.opens_on,
            "window_closes_on": window.closes_on,
            "status": AssessmentStatus.SCHEDULED.value,
            "started_at": None,
            "completed_at": None,
            "mode": None,
            "not_done_reason": None,
        }
        for assessment_id, window in zip(assessment_ids, windows, strict=True)
    ]
    # outbox.planned_rows on transient objects: the very code sync_patient_messages runs.
    transient_patient = Patient(
        id=patient_id,
        status=PatientStatus.ACTIVE,
        is_reminders_paused=False,
        timezone=tz.key,
        contact=PatientContact(**{k: v for k, v in contact.items() if k != "patient_id"}),
    )
    transient_assessments = [
        Assessment(
            id=row["id"],
            timepoint=row["timepoint"],
            target_on=row["target_on"],
            window_opens_on=row["window_opens_on"],
            window_closes_on=row["window_closes_on"],
            status=row["status"],
        )
        for row in assessments
    ]
    wanted = planned_rows(transient_patient, transient_assessments, spec.enrolled_at)
    messages = [
        {
            "patient_id": patient_id,
            "assessment_id": planned.assessment.id,
            "kind": planned.kind,
            "channel": planned.channel,
            "dedupe_key": key,
            "scheduled_for": planned.send_at,
            "status": MessageStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": planned.send_at,
            "last_error": None,
            "provider_id": None,
            "created_at": spec.enrolled_at,
            "sent_at": None,
        }
        for key, planned in wanted.items()
    ]
    link = {
        "id": link_id,
        "patient_id": patient_id,
        "salt": salt,
        "token_hash": hash_token(derive_token(salt)),
        "created_at": spec.enrolled_at,
        "expires_at": participation_ends_at(schedule, spec.randomized_on, tz),
        "revoked_at": None,
        "last_used_at": None,
    }
    audit = [
        audit_row(
            spec.enrolled_at,
            "patient.enroll",
            "patient",
            patient_id,
            site_id,
            after={
                "study_code": spec.study_code,
                "arm": spec.arm,
                "randomized_on": spec.randomized_on.isoformat(),
                "language": spec.language,
            },
        ),
        audit_row(spec.enrolled_at, "link.issue", "patient_link", link_id, site_id),
    ]
    return EnrolmentRows(patient, contact, assessments, link, messages, audit)


def audit_row(
    at: datetime,
    action: str,
    entity_type: str,
    entity_id: int,
    site_id: int,
    after: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "occurred_at": at,
        "actor_type": ActorType.SYSTEM.value,
        "actor_id": None,
        "action": action,
        "entity_type": entity_type,
        "entity_id": str(entity_id),
        "site_id": site_id,
        "before": None,
        "after": after,
        "reason": None,
    }


def play_history(
    rows: EnrolmentRows, spec: PatientSpec, rng: random.Random, grace: timedelta
) -> None:
    """Bring the rows to the state the last pass (PREVIOUS_PASS) left them in."""
    tz = ROME
    cutoff = min(PREVIOUS_PASS, spec.withdrawn_at or PREVIOUS_PASS)
    by_assessment: dict[int, list[dict[str, Any]]] = {}
    for message in rows.messages:
        by_assessment.setdefault(message["assessment_id"], []).append(message)
    for assessment in rows.assessments:
        messages = by_assessment.get(assessment["id"], [])
        opens_at = local_instant(assessment["window_opens_on"], time(0), tz)
        closes_at = local_instant(assessment["window_closes_on"] + timedelta(days=1), time(0), tz)
        completed_at = None
        if rng.random() < COMPLETED_SHARE:
            days = (assessment["window_closes_on"] - assessment["window_opens_on"]).days + 1
            day = assessment["window_opens_on"] + timedelta(days=rng.randrange(days))
            moment = local_instant(day, time(rng.randint(11, 21), rng.randrange(60)), tz)
            completed_at = max(moment, spec.enrolled_at + timedelta(minutes=30))
        if opens_at > cutoff:
            continue  # scheduled, its messages pending
        if completed_at is not None and completed_at <= cutoff and completed_at < closes_at:
            assessment.update(
                status=AssessmentStatus.COMPLETED.value,
                started_at=completed_at - timedelta(minutes=20),
                completed_at=completed_at,
                mode="web",
            )
            for message in messages:
                if message["scheduled_for"] < completed_at:
                    _sent(message)
                else:  # submit() re-plans: nothing more is wanted for this assessment
                    _cancelled(message, "no longer planned")
            continue
        if closes_at + grace <= cutoff:
            assessment["status"] = AssessmentStatus.MISSED.value
        elif rng.random() < IN_PROGRESS_SHARE:
            started_at = max(cutoff - timedelta(hours=2), opens_at, spec.enrolled_at)
            assessment.update(
                status=AssessmentStatus.IN_PROGRESS.value, started_at=started_at, mode="web"
            )
        else:
            assessment["status"] = AssessmentStatus.OPEN.value
        for message in messages:
            if message["scheduled_for"] <= cutoff:
                _sent(message)
    if spec.withdrawn_at is not None:  # patient_status.withdraw()
        reason = "patient withdrawn"
        rows.patient.update(
            status=PatientStatus.WITHDRAWN.value,
            withdrawn_on=spec.withdrawn_at.astimezone(tz).date(),
            withdrawal_reason="bench",
        )
        for message in rows.messages:
            if message["status"] == MessageStatus.PENDING:
                _cancelled(message, reason)
        for assessment in rows.assessments:
            if assessment["status"] in ANSWERABLE_STATUSES:
                assessment.update(
                    status=AssessmentStatus.NOT_DONE.value, not_done_reason="withdrawn"
                )
        rows.audit.append(
            audit_row(
                spec.withdrawn_at,
                "patient.withdrawn",
                "patient",
                rows.patient["id"],
                rows.patient["site_id"],
            )
        )


def _sent(message: dict[str, Any]) -> None:
    message.update(
        status=MessageStatus.SENT.value,
        attempts=1,
        sent_at=message["scheduled_for"],
        next_attempt_at=message["scheduled_for"] + dispatch.CLAIM_LEASE,
        provider_id=f"<bench-{message['dedupe_key']}@pro.example.test>",
    )


def _cancelled(message: dict[str, Any], reason: str) -> None:
    message.update(status=MessageStatus.CANCELLED.value, last_error=reason)


# --------------------------------------------------------------------------- loading


def check_generator(site: Site, schedule: Schedule) -> None:
    """Enrol sample patients through enroll_patient() and compare with the generator; roll back."""
    for index in range(CHECK_PATIENTS):
        spec, _ = patient_spec(9_000_000 + index)  # other study codes than the loaded ones
        enrolment = enroll_patient(
            EnrolmentRequest(
                study_code=spec.study_code,
                site=site,
                arm=spec.arm,
                randomized_on=spec.randomized_on,
                language=spec.language,
                timezone=ROME.key,
                email=spec.email,
                mobile=spec.mobile,
                preferred_channel=spec.preferred_channel,
                birth_year=spec.birth_year,
            ),
            spec.enrolled_at,
        )
        db.session.flush()
        patient = enrolment.patient
        assessments = sorted(
            db.session.scalars(db.select(Assessment).where(Assessment.patient_id == patient.id)),
            key=lambda a: a.id,
        )
        link = db.session.scalars(
            db.select(PatientLink).where(PatientLink.patient_id == patient.id)
        ).one()
        expected = enrolment_rows(
            spec,
            schedule,
            site.id,
            patient.id,
            [a.id for a in assessments],
            link.id,
            link.salt or "",
        )
        actual_messages = db.session.scalars(
            db.select(Message).where(Message.patient_id == patient.id).order_by(Message.id)
        )
        actual_audit = db.session.scalars(
            db.select(AuditEvent)
            .where(
                or_(
                    (AuditEvent.entity_type == "patient")
                    & (AuditEvent.entity_id == str(patient.id)),
                    (AuditEvent.entity_type == "patient_link")
                    & (AuditEvent.entity_id == str(link.id)),
                )
            )
            .order_by(AuditEvent.id)
        )
        problems = _differences(
            spec.study_code,
            [
                ([expected.patient], [patient]),
                ([expected.contact], [patient.contact]),
                (expected.assessments, assessments),
                ([expected.link], [link]),
                (expected.messages, list(actual_messages)),
                (
                    [
                        {k: v for k, v in row.items() if k != "occurred_at"}
                        for row in expected.audit
                    ],
                    list(actual_audit),
                ),
            ],
        )
        if problems:
            raise SystemExit(
                "The bulk generator differs from enroll_patient():\n" + "\n".join(problems)
            )
    db.session.rollback()


def _differences(code: str, pairs: list[tuple[list[dict[str, Any]], list[Any]]]) -> list[str]:
    problems = []
    for expected_rows, actual_rows in pairs:
        if len(expected_rows) != len(actual_rows):
            problems.append(
                f"{code}: {len(expected_rows)} rows expected, {len(actual_rows)} written"
            )
            continue
        for expected, actual in zip(expected_rows, actual_rows, strict=True):
            for column, value in expected.items():
                written = getattr(actual, column)
                if written != value:
                    problems.append(
                        f"{code}: {type(actual).__name__}.{column} {written!r} != {value!r}"
                    )
    return problems


def load_patients(count: int, site_id: int, schedule: Schedule, grace: timedelta) -> None:
    """Generate and bulk-insert `count` patients with their history, LOAD_CHUNK at a time."""
    timepoints = len(schedule.timepoints)
    message_id = audit_id = 0
    for start in range(0, count, LOAD_CHUNK):
        batch: dict[type, list[dict[str, Any]]] = {
            Patient: [],
            PatientContact: [],
            Assessment: [],
            PatientLink: [],
            Message: [],
            AuditEvent: [],
        }
        for index in range(start, min(count, start + LOAD_CHUNK)):
            spec, rng = patient_spec(index)
            patient_id = index + 1
            rows = enrolment_rows(
                spec,
                schedule,
                site_id,
                patient_id,
                [index * timepoints + k + 1 for k in range(timepoints)],
                patient_id,
                f"{rng.getrandbits(128):032x}",
            )
            play_history(rows, spec, rng, grace)
            for message in rows.messages:
                message_id += 1
                message["id"] = message_id
            for row in rows.audit:
                audit_id += 1
                row["id"] = audit_id
            batch[Patient].append(rows.patient)
            batch[PatientContact].append(rows.contact)
            batch[Assessment].extend(rows.assessments)
            batch[PatientLink].append(rows.link)
            batch[Message].extend(rows.messages)
            batch[AuditEvent].extend(rows.audit)
        for model, dicts in batch.items():
            if dicts:
                db.session.execute(insert(model), dicts)
        db.session.commit()
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as connection:
            for table in (
                "site",
                "patient",
                "assessment",
                "patient_link",
                "message",
                "audit_event",
            ):
                connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                        f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
                    )
                )
            connection.execute(text("ANALYZE"))  # as autovacuum would have done by now


# --------------------------------------------------------------------------- measuring


@dataclass
class PassResult:
    label: str
    due: int
    opened: int = 0
    missed: int = 0
    sent: int = 0
    cancelled: int = 0
    seconds: float = 0.0
    statements: int = 0
    commits: int = 0
    peak_mb: float = 0.0
    shapes: Counter[tuple[str, str]] = field(default_factory=Counter)
    state_updates: int = 0  # chunked UPDATEs of assessment states (UPDATE_CHUNK rows each)


@dataclass
class Saved:
    """The rows a pass at NOW can change, as they were before it."""

    messages: list[dict[str, Any]]
    assessments: list[dict[str, Any]]
    links: int
    audit: int


MESSAGE_STATE = (
    "id",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "provider_id",
    "sent_at",
)


def save_state(now: datetime) -> Saved:
    due = db.session.execute(
        db.select(*(getattr(Message, c) for c in MESSAGE_STATE))
        .where(
            Message.status.in_([MessageStatus.PENDING, MessageStatus.SENDING]),
            Message.next_attempt_at <= now,
        )
        .order_by(Message.id)
    )
    soon = (now + timedelta(days=1)).date()
    candidates = db.session.execute(
        db.select(Assessment.id, Assessment.status).where(
            or_(
                (Assessment.status == AssessmentStatus.SCHEDULED)
                & (Assessment.window_opens_on <= soon),
                Assessment.status.in_(ANSWERABLE_STATUSES) & (Assessment.window_closes_on < soon),
            )
        )
    )
    saved = Saved(
        messages=[dict(row._mapping) for row in due],
        assessments=[dict(row._mapping) for row in candidates],
        links=db.session.scalar(db.select(db.func.count(PatientLink.id))) or 0,
        audit=db.session.scalar(db.select(db.func.count(AuditEvent.id))) or 0,
    )
    db.session.commit()
    return saved


def restore_state(saved: Saved, only_due: int | None = None) -> None:
    """Put back what a pass changed; with only_due, leave only the first messages due."""
    links = db.session.scalar(db.select(db.func.count(PatientLink.id)))
    audit = db.session.scalar(db.select(db.func.count(AuditEvent.id)))
    if (links, audit) != (saved.links, saved.audit):
        raise SystemExit(
            "The pass issued links or audit events: it cannot be repeated from a saved state."
        )
    messages = [dict(row) for row in saved.messages]
    if only_due is not None:
        for row in messages[only_due:]:
            row["next_attempt_at"] = NOW + timedelta(days=1)  # not due in this pass
    if messages:
        db.session.execute(update(Message), messages)
    if saved.assessments:
        db.session.execute(update(Assessment), saved.assessments)
    db.session.commit()


_SHAPE = re.compile(r"^\s*(SELECT|UPDATE|INSERT INTO|DELETE FROM)\b", re.IGNORECASE)
_TABLE = re.compile(r"\b(?:FROM|UPDATE|INTO)\s+\"?(\w+)", re.IGNORECASE)
_WHERE = re.compile(r"\bWHERE\s+\(?\"?([\w.]+)\"?\s*(=|IN\b|<=|>=|<|>)", re.IGNORECASE)
APP_ROOT = str(Path(__file__).resolve().parents[1] / "pro_app")


def statement_shape(sql: str) -> str:
    """`SELECT patient_link WHERE patient_link.patient_id =`: verb, table, first condition."""
    verb = _SHAPE.match(sql)
    table = _TABLE.search(sql)
    where = _WHERE.search(sql)
    parts = [verb.group(1).upper() if verb else sql.split(None, 1)[0].upper()]
    parts.append(table.group(1) if table else "?")
    if where:
        parts.append(f"WHERE {where.group(1)} {where.group(2).upper()}")
    return " ".join(parts)


def statement_origin() -> str:
    """The innermost frame in pro_app/ that led to the statement: file:line (function)."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(APP_ROOT):
            return f"{filename[len(APP_ROOT) - 7 :]}:{frame.f_lineno} ({frame.f_code.co_name})"
        frame = frame.f_back  # type: ignore[assignment]
    return "?"


@contextmanager
def counting(result: PassResult, origins: bool) -> Iterator[None]:
    engine = db.engine

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        result.statements += 1
        if origins:
            result.shapes[(statement_origin(), statement_shape(statement))] += 1

    def on_commit(_conn: Any) -> None:
        result.commits += 1

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
        event.remove(engine, "commit", on_commit)


def run_pass(app: Flask, label: str, due: int, memory: bool) -> PassResult:
    """One dispatch_due_messages(NOW) in a fresh app context, counted and timed."""
    result = PassResult(label, due)
    with app.app_context():
        channel_senders = senders()
        channel_senders.email.sent.clear()  # type: ignore[attr-defined]
        channel_senders.sms.sent.clear()  # type: ignore[attr-defined]
        db.session.remove()
        gc.collect()
        with counting(result, origins=memory):
            if memory:
                tracemalloc.start()
            started = clock.perf_counter()
            summary = dispatch.dispatch_due_messages(NOW)
            result.seconds = clock.perf_counter() - started
            if memory:
                result.peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
                tracemalloc.stop()
        db.session.remove()
    result.opened, result.missed = summary.opened, summary.missed
    result.sent, result.cancelled = summary.sent, summary.cancelled
    chunk = assessment_states.UPDATE_CHUNK
    result.state_updates = math.ceil(result.opened / chunk) + math.ceil(result.missed / chunk)
    return result


def measure(app: Flask, saved: Saved, label: str, only_due: int | None) -> PassResult:
    """Time the pass, then repeat it from the same state under tracemalloc for the memory."""
    due = len(saved.messages) if only_due is None else min(only_due, len(saved.messages))
    results = []
    for memory in (False, True):
        with app.app_context():
            restore_state(saved, only_due)
        results.append(run_pass(app, label, due, memory))
    timed, traced = results
    if (timed.statements, timed.sent) != (traced.statements, traced.sent):
        raise SystemExit(f"{label}: the repeated pass differs ({timed} / {traced})")
    timed.peak_mb, timed.shapes = traced.peak_mb, traced.shapes
    with app.app_context():
        restore_state(saved)
    return timed


@dataclass
class Measured:
    database: str
    patients: int
    setup_seconds: float
    all_due: PassResult
    fixed: PassResult


def bench_database(name: str, uri: str, patients: int, reset_postgres: bool) -> Measured:
    if reset_postgres:
        reset_schema(uri)
    app = create_app(make_config(uri))
    try:
        started = clock.perf_counter()
        with app.app_context():
            db.create_all()
            site = Site(code="BENCH", name="Bench site")
            db.session.add(site)
            db.session.commit()
            schedule = trial_schedule()
            check_generator(site, schedule)
            grace = timedelta(minutes=app.config["PATIENT_SUBMIT_GRACE_MINUTES"])
            load_patients(patients, site.id, schedule, grace)
            saved = save_state(NOW)
        setup = clock.perf_counter() - started
        all_due = measure(app, saved, "all due", None)
        fixed = measure(app, saved, f"{FIXED_DUE} due", FIXED_DUE)
        return Measured(name, patients, setup, all_due, fixed)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def reset_schema(uri: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(uri)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


# --------------------------------------------------------------------------- reporting


def short(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def print_table(results: list[Measured]) -> None:
    header = (
        f"{'database':<10} {'patients':>8} {'pass':<8} {'opened':>6} {'missed':>6} {'due':>5} "
        f"{'sent':>5} {'seconds':>8} {'statements':>10} {'per due':>7} {'commits':>7} "
        f"{'peak MB':>7}"
    )
    print(header)
    print("-" * len(header))
    for m in results:
        for r in (m.all_due, m.fixed):
            per_due = f"{r.statements / r.due:.1f}" if r.due else "-"
            print(
                f"{m.database:<10} {m.patients:>8,} {r.label:<8} {r.opened:>6} {r.missed:>6} "
                f"{r.due:>5} {r.sent:>5} {r.seconds:>8.3f} {r.statements:>10} {per_due:>7} "
                f"{r.commits:>7} {r.peak_mb:>7.1f}"
            )


def print_verdict(database: str, results: list[Measured]) -> bool:
    """Print the verdict lines of one database; True when the count is constant in N."""
    rows = [m for m in results if m.database == database]
    if len(rows) < 2:
        return True
    fixed = ", ".join(f"{short(m.patients)}={m.fixed.statements}" for m in rows)
    # Chunked state UPDATEs (one per UPDATE_CHUNK assessments changing state) grow by design.
    baseline = rows[0].fixed.statements - rows[0].fixed.state_updates
    constant = all(m.fixed.statements - m.fixed.state_updates == baseline for m in rows)
    chunks_differ = len({m.fixed.state_updates for m in rows}) > 1
    verdict = "constant" if constant else "GROWS"
    if any(m.all_due.due < FIXED_DUE for m in rows):
        verdict += f" (not comparable: a size has fewer than {FIXED_DUE} messages due)"
    if constant and chunks_differ:
        verdict += " (apart from one state UPDATE per 500 assessments, by design)"
    print(f"{database}: statements per pass with {FIXED_DUE} due: {fixed} → {verdict}")
    marginal = []
    for m in rows:
        extra = m.all_due.due - m.fixed.due
        value = (m.all_due.statements - m.fixed.statements) / extra if extra else float("nan")
        marginal.append(f"{short(m.patients)}={value:.2f}")
    alls = ", ".join(
        f"{short(m.patients)}={m.all_due.statements} ({m.all_due.due} due)" for m in rows
    )
    print(f"{database}: statements per pass with all due: {alls}")
    print(f"{database}: statements per extra due message: {', '.join(marginal)}")
    if not constant:
        first, last = rows[0].fixed.shapes, rows[-1].fixed.shapes
        print(
            f"{database}: statements that grow from {short(rows[0].patients)} "
            f"to {short(rows[-1].patients)}:"
        )
        for key in sorted(set(first) | set(last), key=lambda k: first[k] - last[k]):
            if last[key] != first[key]:
                print(f"    {first[key]:>6} → {last[key]:>6}  {key[1]}  [{key[0]}]")
    return constant


def print_origins(m: Measured) -> None:
    """Where the statements of the largest all-due pass come from, most frequent first."""
    r = m.all_due
    print(
        f"\n{m.database}, {m.patients:,} patients, all due ({r.due} messages): statements by origin"
    )
    for (origin, shape), count in r.shapes.most_common(14):
        per = f"{count / r.due:.2f}/msg" if r.due else ""
        print(f"  {count:>6} {per:>9}  {shape:<52} {origin}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--postgres",
        default=os.environ.get("PRO_BENCH_POSTGRES_URI", ""),
        help="PostgreSQL URI (its public schema is dropped!); default $PRO_BENCH_POSTGRES_URI",
    )
    parser.add_argument("--large", action="store_true", help=f"also {LARGE_SIZE:,} patients")
    parser.add_argument("--sizes", help="comma-separated patient counts instead of 1000,10000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else list(SIZES)
    if args.large:
        sizes.append(LARGE_SIZE)

    results: list[Measured] = []
    databases = ["sqlite"] + (["postgresql"] if args.postgres else [])
    try:
        for database in databases:
            for patients in sizes:
                with tempfile.TemporaryDirectory() as tmp:
                    uri = (
                        args.postgres
                        if database == "postgresql"
                        else f"sqlite:///{tmp}/bench.sqlite3"
                    )
                    m = bench_database(
                        database, uri, patients, reset_postgres=database == "postgresql"
                    )
                print(
                    f"[{database} {patients:,} patients: setup {m.setup_seconds:.1f} s]",
                    file=sys.stderr,
                    flush=True,
                )
                results.append(m)
    finally:
        if args.postgres:
            reset_schema(args.postgres)  # leave the schema empty, as found

    print(
        f"\nOne dispatcher pass at {NOW.astimezone(ROME):%Y-%m-%d %H:%M %Z}; "
        f"'{FIXED_DUE} due' = same pass with only the first {FIXED_DUE} due messages\n"
    )
    print_table(results)
    print()
    ok = all([print_verdict(database, results) for database in databases])
    for database in databases:
        print_origins(max((m for m in results if m.database == database), key=lambda m: m.patients))
    print(f"\nverdict: statement count {'constant' if ok else 'GROWS'} in N")


if __name__ == "__main__":
    main()
