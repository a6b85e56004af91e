"""`pro-app demo`: a demo site with staff logins and patients in every state, for newcomers."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app

from pro_app.extensions import db
from pro_app.messaging import DeliveryError, EmailMessage, EmailSender
from pro_app.models import (
    Answer,
    Assessment,
    AssessmentStatus,
    Mode,
    Patient,
    PatientStatus,
    Role,
    Site,
)
from pro_app.services import accounts, audit, patient_status
from pro_app.services.definitions import instrument_registry, trial_schedule
from pro_app.services.demo_cohort import add_paper_form_and_correction, follow_up_cohort
from pro_app.services.dispatch import dispatch_due_messages
from pro_app.services.enrolment import EnrolmentRequest, enroll_patient
from pro_app.services.links import active_link, issue_link, link_url, token_of
from pro_app.services.scores import store_scores
from pro_app.services.senders import senders

DEMO_SITE = ("DEMO", "Ospedale dimostrativo")
DEMO_OTHER_SITE = ("DEMO2", "Secondo centro dimostrativo")
DEMO_PASSWORD = "demo-password"  # noqa: S105 - printed on purpose: demo logins only
DEMO_STAFF = (
    ("infermiera@demo.invalid", "Giulia Rossi (demo)", Role.NURSE, "DEMO"),
    ("sperimentatore@demo.invalid", "Marco Bianchi (demo)", Role.INVESTIGATOR, "DEMO"),
    ("infermiere2@demo.invalid", "Luca Verdi (demo)", Role.NURSE, "DEMO2"),
    ("analista@demo.invalid", "Elena Neri (demo)", Role.ANALYST, None),
    ("admin@demo.invalid", "Amministratore (demo)", Role.ADMIN, None),
)
ROME = ZoneInfo("Europe/Rome")
REFUSED_ADDRESS = "demo-013@example.invalid"  # DEMO-013's mailbox "does not exist"


@dataclass(frozen=True)
class DemoPatient:
    """A patient to create: days since randomization and what happened at each time point."""

    code: str
    site: str
    arm: str
    days_ago: int
    outcomes: dict[str, str]  # time point → "completed" | "partial" | "missed" | "open"
    language: str = "it"
    status: str = PatientStatus.ACTIVE
    status_days_ago: int = 0
    note: str = ""
    # Symptom burden (0-1) at each time point in schedule order; empty = a random walk.
    burdens: tuple[float, ...] = ()


DEMO_PATIENTS = (
    DemoPatient(
        "DEMO-001", "DEMO", "tae", 2, {"baseline": "open"}, note="baseline open, not started"
    ),
    DemoPatient(
        "DEMO-002", "DEMO", "control", 3, {"baseline": "partial"}, note="baseline half done"
    ),
    DemoPatient("DEMO-003", "DEMO", "tae", 5, {"baseline": "completed"}, note="baseline completed"),
    DemoPatient(
        "DEMO-004",
        "DEMO",
        "control",
        85,
        {"baseline": "completed", "month3": "open"},
        note="month 3 open",
    ),
    DemoPatient(
        "DEMO-005",
        "DEMO",
        "tae",
        100,
        {"baseline": "completed", "month3": "partial"},
        note="month 3 started, closes in a few days",
    ),
    DemoPatient(
        "DEMO-006",
        "DEMO",
        "control",
        120,
        {"baseline": "completed", "month3": "completed"},
        note="waiting for month 6",
    ),
    DemoPatient(
        "DEMO-007",
        "DEMO",
        "tae",
        130,
        {"baseline": "missed", "month3": "missed"},
        note="missed both time points",
    ),
    DemoPatient(
        "DEMO-008",
        "DEMO",
        "control",
        200,
        {"baseline": "completed", "month3": "completed", "month6": "completed"},
        status=PatientStatus.COMPLETED,
        note="participation complete",
    ),
    DemoPatient(
        "DEMO-009",
        "DEMO",
        "tae",
        95,
        {"baseline": "completed", "month3": "open"},
        status=PatientStatus.WITHDRAWN,
        status_days_ago=10,
        note="withdrawn",
    ),
    DemoPatient(
        "DEMO-010",
        "DEMO",
        "control",
        150,
        {"baseline": "completed", "month3": "completed"},
        status=PatientStatus.DECEASED,
        status_days_ago=20,
        note="deceased",
    ),
    DemoPatient(
        "DEMO-011",
        "DEMO",
        "tae",
        1,
        {"baseline": "open"},
        language="en",
        note="English-speaking patient",
    ),
    DemoPatient(
        "DEMO-012",
        "DEMO",
        "tae",
        175,
        {"baseline": "completed", "month3": "completed", "month6": "open"},
        note="month 6 open",
    ),
    DemoPatient(
        "DEMO-013",
        "DEMO",
        "control",
        2,
        {"baseline": "open"},
        note="e-mail refused: invitation failed",
    ),
    DemoPatient(
        "DEMO2-001",
        "DEMO2",
        "control",
        4,
        {"baseline": "completed"},
        note="other site (nurses of DEMO cannot see it)",
    ),
)


def load_demo(now: datetime) -> Iterator[str]:
    """Create the demo data once (or refresh the demo links), yielding lines to print."""
    if accounts.site_by_code(DEMO_SITE[0]) is None:
        _create(now)
        yield "Demo data loaded."
    else:
        yield "Demo data already loaded."
    links = _current_links(now)
    db.session.commit()
    configured = senders()
    demo_senders = replace(configured, email=RefusingMailbox(configured.email))
    # A pass at the last midday first, as the scheduler would have run it, so that the outbox has
    # something to show even when the demo is loaded during quiet hours.
    for instant in (_last_midday(now), now):
        summary = dispatch_due_messages(instant, demo_senders).line()
        yield f"Dispatcher pass at {instant:%Y-%m-%d %H:%M} UTC: {summary}"
    yield from _summary(links)


@dataclass(frozen=True)
class RefusingMailbox:
    """The configured e-mail sender, except that one demo mailbox does not exist.

    Its server's refusal goes through the dispatcher's own failure path, so the worklist's
    "failed messages" tab and the administrators' status page have a real failure to show.
    """

    inner: EmailSender

    def send(self, message: EmailMessage) -> str:
        if message.to == REFUSED_ADDRESS:
            raise DeliveryError("SMTP 550 5.1.1 mailbox unavailable", permanent=True)
        return self.inner.send(message)


def _last_midday(now: datetime) -> datetime:
    local = now.astimezone(ROME)
    midday = datetime.combine(local.date(), time(12, 0), ROME)
    if midday > local:
        midday -= timedelta(days=1)
    return midday.astimezone(UTC)


def _create(now: datetime) -> None:
    sites = {code: accounts.add_site(code, name) for code, name in (DEMO_SITE, DEMO_OTHER_SITE)}
    for email, name, role, site_code in DEMO_STAFF:
        site = sites[site_code] if site_code else None
        accounts.add_staff(email, name, role, DEMO_PASSWORD, site)
    rng = random.Random(20261124)  # noqa: S311 - reproducible demo data, not security
    for spec in (*DEMO_PATIENTS, *follow_up_cohort()):
        _create_patient(spec, sites[spec.site], now, rng)
    db.session.flush()
    add_paper_form_and_correction(now)


def _create_patient(spec: DemoPatient, site: Site, now: datetime, rng: random.Random) -> None:
    today = now.astimezone(ROME).date()
    randomized_on = today - timedelta(days=spec.days_ago)
    enrolled_at = datetime.combine(randomized_on, time(11, 0), ROME).astimezone(UTC)
    enrolment = enroll_patient(
        EnrolmentRequest(
            study_code=spec.code,
            site=site,
            arm=spec.arm,
            randomized_on=randomized_on,
            language=spec.language,
            email=f"{spec.code.lower()}@example.invalid",
            mobile="+39 347 000 " + spec.code[-4:].replace("-", "0"),
        ),
        enrolled_at,
    )
    patient = enrolment.patient
    link = active_link(patient)
    actor = audit.Actor.patient_link(link.id) if link else audit.SYSTEM
    health = rng.uniform(0.2, 0.8)  # this patient's burden of symptoms, 0 = none
    for index, assessment in enumerate(
        sorted(_assessments(patient), key=lambda a: a.window_opens_on)
    ):
        if index < len(spec.burdens):
            health = min(0.95, max(0.05, spec.burdens[index] + rng.uniform(-0.12, 0.12)))
        outcome = spec.outcomes.get(assessment.timepoint)
        if outcome is None:
            continue
        _play_outcome(assessment, outcome, health, now, rng, actor)
        health = min(0.95, max(0.05, health + rng.uniform(-0.15, 0.15)))
    _apply_status(patient, spec, now)


def _assessments(patient: Patient) -> list[Assessment]:
    db.session.flush()
    return list(
        db.session.scalars(db.select(Assessment).where(Assessment.patient_id == patient.id))
    )


def _play_outcome(
    assessment: Assessment,
    outcome: str,
    burden: float,
    now: datetime,
    rng: random.Random,
    actor: audit.Actor,
) -> None:
    opened_at = datetime.combine(assessment.window_opens_on, time(18, 30), ROME).astimezone(UTC)
    if outcome == "missed":
        assessment.status = AssessmentStatus.MISSED
        return
    if outcome == "open":
        assessment.status = AssessmentStatus.OPEN
        return
    answered_at = min(opened_at + timedelta(days=rng.randint(0, 3)), now - timedelta(hours=2))
    _answer(assessment, burden, answered_at, rng, partial=outcome == "partial")
    assessment.started_at = answered_at
    assessment.mode = Mode.WEB
    assessment.text_packs = {
        code: instrument_registry().text(code, assessment.patient.language).identity
        for code in trial_schedule().timepoint(assessment.timepoint).instruments
    }
    if outcome == "partial":
        assessment.status = AssessmentStatus.IN_PROGRESS
        return
    assessment.status = AssessmentStatus.COMPLETED
    assessment.completed_at = answered_at + timedelta(minutes=rng.randint(6, 20))
    store_scores(assessment, assessment.completed_at)
    audit.record(
        actor,
        "assessment.submit",
        assessment,
        site_id=assessment.patient.site_id,
        after={"timepoint": assessment.timepoint, "status": assessment.status},
    )


def _answer(
    assessment: Assessment, burden: float, at: datetime, rng: random.Random, partial: bool
) -> None:
    registry = instrument_registry()
    instruments = trial_schedule().timepoint(assessment.timepoint).instruments
    for position, code in enumerate(instruments):
        if partial and position > 0:
            break  # a partial response stops within the first questionnaire
        instrument = registry.get(code)
        items = instrument.items[: len(instrument.items) // 2] if partial else instrument.items
        for item in items:
            scale = item.response_scale
            if rng.random() < 0.02:
                value = None  # an occasional deliberately skipped item
            elif scale.max - scale.min > 3:  # global items: higher means better
                value = round(scale.max - burden * (scale.max - scale.min) + rng.uniform(-1, 1))
            else:
                value = round(scale.min + burden * (scale.max - scale.min) + rng.uniform(-1, 1))
            if value is not None:
                value = min(scale.max, max(scale.min, value))
            db.session.add(
                Answer(
                    assessment=assessment,
                    instrument=code,
                    item=item.number,
                    value=value,
                    answered_at=at,
                )
            )


def _apply_status(patient: Patient, spec: DemoPatient, now: datetime) -> None:
    changed_on = patient.randomized_on + timedelta(days=spec.days_ago - spec.status_days_ago)
    if spec.status == PatientStatus.WITHDRAWN:
        patient_status.withdraw(
            patient,
            changed_on,
            "Ha chiesto di non ricevere più questionari (demo)",
            now,
            audit.SYSTEM,
        )
    elif spec.status == PatientStatus.DECEASED:
        patient_status.record_death(patient, changed_on, now, audit.SYSTEM)
    elif spec.status == PatientStatus.COMPLETED:
        patient.status = PatientStatus.COMPLETED
        audit.record(audit.SYSTEM, "patient.completed", patient, site_id=patient.site_id)


def _current_links(now: datetime) -> list[tuple[DemoPatient, str | None]]:
    """The demo patients' working links (the same on every run, so old messages still work)."""
    links: list[tuple[DemoPatient, str | None]] = []
    for spec in DEMO_PATIENTS:
        patient = db.session.scalar(db.select(Patient).where(Patient.study_code == spec.code))
        if patient is None or not patient.is_active:
            links.append((spec, None))  # no longer followed: nothing to open
            continue
        link = active_link(patient)
        token = token_of(link) if link is not None and link.is_valid_at(now) else None
        links.append((spec, token or issue_link(patient, now)))
    return links


def _summary(links: list[tuple[DemoPatient, str | None]]) -> Iterator[str]:
    base_url = current_app.config["BASE_URL"] or ""
    yield ""
    yield f"Staff area: {base_url}/auth/sign-in"
    yield f"Staff logins (password for all: {DEMO_PASSWORD}):"
    for email, _name, role, site_code in DEMO_STAFF:
        yield f"  {role:<13} {email:<30} {site_code or 'all sites'}"
    yield ""
    yield f"Messages sent to patients (development outbox): {base_url}/dev/outbox"
    yield f"Analyst pages (exports, compliance, plots): {base_url}/analyst/"
    yield f"System status (admin): {base_url}/staff/admin/metrics"
    yield "Exports from the command line: pro-app export scores --out scores.sav --format sav"
    yield f"JSON API for R/Python scripts: create a token at {base_url}/analyst/api-tokens"
    yield ""
    yield "Patient links (open one in a phone-sized window):"
    for spec, token in links:
        shown = link_url(base_url, token) if token else "(no link: no longer followed)"
        yield f"  {spec.code:<10} {spec.note:<42} {shown}"
