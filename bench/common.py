"""What the scale benchmarks share: a synthetic trial, statement counting, memory, verdicts.

The trial (used by dispatch_pass.py and worklist_scale.py): patients randomized 1-200 days
before NOW (all in Europe/Rome), enrolled on that day, 3 % withdrawn since. Rows are written in
bulk but are the rows the services write (patient, contact, assessments from plan_windows, link
from derive_token/hash_token, outbox rows from outbox.planned_rows, audit events); before
loading, a sample of patients is enrolled through enroll_patient() and compared field by field
with the generator, then rolled back. History is then played up to the last dispatcher pass at
23:55 the evening before NOW: 70 % of assessments completed at some moment of their window
(later messages cancelled, as submit() does), windows closed since then missed, messages due
before then sent. Answers and scores are not created. Patient i is drawn from its own seed, so
1,000 patients are a prefix of 10,000.
"""

from __future__ import annotations

import math
import random
import re
import resource
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, create_engine, event, insert, make_url, or_, text

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
from pro_app.services import dispatch
from pro_app.services.contact_formats import normalize_email, normalize_mobile
from pro_app.services.enrolment import EnrolmentRequest, enroll_patient
from pro_app.services.links import derive_token, hash_token
from pro_app.services.outbox import planned_rows

ROME = ZoneInfo("Europe/Rome")
# The instant the benches measure at, and the last dispatcher pass before it.
NOW = datetime(2026, 3, 10, 10, 5, tzinfo=ROME).astimezone(UTC)
PREVIOUS_PASS = datetime(2026, 3, 9, 23, 55, tzinfo=ROME).astimezone(UTC)
OLDEST_DAYS = 200
WITHDRAWN_SHARE = 0.03
COMPLETED_SHARE = 0.70
IN_PROGRESS_SHARE = 0.20  # of the windows open and not completed
LOAD_CHUNK = 2_000  # patients generated and inserted per transaction
CHECK_PATIENTS = 40  # enrolled through the real service to validate the generator
SECRET_KEY = "bench-secret-key-" + "x" * 32
MAIL_SENDER = "Questionari <questionari@pro.example.test>"
# The main test suite's database: no bench ever empties it.
PROTECTED_DATABASES = frozenset({"test"})


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


# --------------------------------------------------------------------------- databases


def reset_schema(uri: str) -> None:
    """Drop and create the `public` schema of a PostgreSQL database (never the tests' one)."""
    name = make_url(uri).database or ""
    if name in PROTECTED_DATABASES:
        raise SystemExit(
            f"Refusing to empty the database {name!r}: the test suite uses it. "
            "Create one for benchmarks (createdb bench_pro) and pass its URI."
        )
    engine = create_engine(uri)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@contextmanager
def scratch_database(server_uri: str, name: str) -> Iterator[str]:
    """A new, empty PostgreSQL database `name` on the server of `server_uri`; dropped after."""
    if name in PROTECTED_DATABASES:
        raise SystemExit(f"Refusing to use the database {name!r}: the test suite uses it.")
    admin = create_engine(server_uri, isolation_level="AUTOCOMMIT")
    quoted = admin.dialect.identifier_preparer.quote(name)
    try:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {quoted}"))
            connection.execute(text(f"CREATE DATABASE {quoted}"))
        yield make_url(server_uri).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
        admin.dispose()


# --------------------------------------------------------------------------- measuring

_SHAPE = re.compile(r"^\s*(SELECT|UPDATE|INSERT INTO|DELETE FROM|WITH)\b", re.IGNORECASE)
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


@dataclass
class StatementCount:
    """SQL statements and commits seen on an engine; with origins, where each came from."""

    statements: int = 0
    commits: int = 0
    shapes: Counter[tuple[str, str]] = field(default_factory=Counter)


@contextmanager
def count_statements(engine: Engine, origins: bool = False) -> Iterator[StatementCount]:
    """Count what the engine executes inside the block (a before_cursor_execute listener)."""
    count = StatementCount()

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        count.statements += 1
        if origins:
            count.shapes[(statement_origin(), statement_shape(statement))] += 1

    def on_commit(_conn: Any) -> None:
        count.commits += 1

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    try:
        yield count
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
        event.remove(engine, "commit", on_commit)


def _proc_status_mb(field_name: str) -> float | None:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field_name}:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (imports included), in MB."""
    # Linux keeps ru_maxrss across fork and exec: a child started by a parent that built a big
    # database would report the parent's peak. VmHWM belongs to this program's memory only.
    peak = _proc_status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """This process's resident memory now, in MB (0 where /proc is not available)."""
    return _proc_status_mb("VmRSS") or 0.0


# --------------------------------------------------------------------------- verdicts


def short(n: int) -> str:
    """10000 → "10k"."""
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def growth_exponent(sizes: Sequence[float], values: Sequence[float]) -> float:
    """k in value ∝ size^k between the smallest and the largest size (0 = flat, 1 = linear)."""
    if len(sizes) < 2 or sizes[0] == sizes[-1] or min(values[0], values[-1]) <= 0:
        return 0.0
    return math.log(values[-1] / values[0]) / math.log(sizes[-1] / sizes[0])


def growth_word(exponent: float) -> str:
    """How a figure grows; a shared machine's noise is allowed for (up to size^1.2 is linear)."""
    if exponent <= 0.25:
        return "flat"
    if exponent <= 0.8:
        return "sub-linear"
    if exponent <= 1.2:
        return "linear"
    return "SUPER-LINEAR"


def at_most_linear(exponent: float) -> bool:
    return exponent <= 1.2


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; columns whose header starts with a space are right-aligned."""
    line = "| " + " | ".join(h.strip() for h in headers) + " |"
    rule = "|" + "|".join("---:" if h.startswith(" ") else "---" for h in headers) + "|"
    body = ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join([line, rule, *body])
