"""A synthetic trial for the scale benchmarks (dispatch_pass.py, worklist_scale.py).

Patients randomized 1-200 days
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

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, or_, text

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
from pro_app.services.definitions import trial_schedule
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


def load_trial(patients: int, grace: timedelta) -> Site:
    """On an empty schema, in an app context: the tables, one site and `patients` patients,
    after checking the generator against enroll_patient()."""
    db.create_all()
    site = Site(code="BENCH", name="Bench site")
    db.session.add(site)
    db.session.commit()
    schedule = trial_schedule()
    check_generator(site, schedule)
    load_patients(patients, site.id, schedule, grace)
    return site


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
