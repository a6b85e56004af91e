"""The demo's follow-up cohort: forty patients who finished the six months, so that the analyst
pages have means, confidence intervals, compliance and deteriorations worth looking at.

The arms follow different courses on purpose (TAE: worse at month 3 after the embolization,
better at month 6; systemic therapy alone: slowly worse), with realistic gaps: a few missed
time points, one withdrawal, one late paper form and one corrected answer.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pro_app.extensions import db
from pro_app.models import Assessment, AssessmentStatus, Patient, PatientStatus, StaffUser
from pro_app.services.corrections import correct_answer
from pro_app.services.definitions import instrument_registry, trial_schedule
from pro_app.services.paper_forms import record_paper_form

if TYPE_CHECKING:
    from pro_app.services.demo import DemoPatient

BURDENS = {"tae": (0.42, 0.50, 0.33), "control": (0.42, 0.46, 0.52)}
PAPER_PATIENT = "DEMO-105"  # month 6 typed in from paper, three days after the window
CORRECTED_PATIENT = "DEMO-103"  # baseline item 29 corrected by the investigator
INVESTIGATOR = "sperimentatore@demo.invalid"


def follow_up_cohort() -> list[DemoPatient]:
    """Patients randomized 200-340 days ago, participation complete (deterministic)."""
    from pro_app.services.demo import DemoPatient

    rng = random.Random(11)  # noqa: S311 - reproducible demo data, not security
    cohort = []
    for index in range(40):
        site = "DEMO" if index < 28 else "DEMO2"
        number = index + 101 if site == "DEMO" else index - 28 + 101
        arm = ("tae", "control")[index % 2]
        outcomes = {
            "baseline": "completed" if rng.random() < 0.95 else "missed",
            "month3": "completed" if rng.random() < 0.85 else "missed",
            "month6": "completed" if rng.random() < 0.8 else "missed",
        }
        code = f"{site}-{number:03d}"
        status, status_days_ago = PatientStatus.COMPLETED, 0
        if index == 17:  # withdrew after month 3
            del outcomes["month6"]
            status, status_days_ago = PatientStatus.WITHDRAWN, rng.randint(60, 90)
        if code == PAPER_PATIENT:
            del outcomes["month6"]
        if code == CORRECTED_PATIENT:
            outcomes["baseline"] = "completed"
        cohort.append(
            DemoPatient(
                code,
                site,
                arm,
                rng.randint(200, 340),
                outcomes,
                status=status,
                status_days_ago=status_days_ago,
                note="follow-up complete",
                burdens=BURDENS[arm],
            )
        )
    return cohort


def _assessment(code: str, timepoint: str) -> Assessment:
    assessment = db.session.scalar(
        db.select(Assessment)
        .join(Patient)
        .where(Patient.study_code == code, Assessment.timepoint == timepoint)
    )
    if assessment is None:
        raise RuntimeError(f"demo data: {code} has no {timepoint} assessment")
    return assessment


def add_paper_form_and_correction(now: datetime) -> None:
    """A late paper form and a corrected answer, entered by the demo investigator."""
    investigator = db.session.scalar(db.select(StaffUser).where(StaffUser.email == INVESTIGATOR))
    if investigator is None:
        raise RuntimeError(f"demo data: no account {INVESTIGATOR}")
    paper = _assessment(PAPER_PATIENT, "month6")
    registry = instrument_registry()
    values: dict[str, int | None] = {}
    for code in trial_schedule().timepoint("month6").instruments:
        for item in registry.get(code).items:
            scale = item.response_scale
            values[f"{code}-{item.number}"] = scale.min + (item.number % (scale.max - scale.min))
    completed_on = paper.window_closes_on + timedelta(days=3)
    record_paper_form(
        paper,
        values,
        completed_on=completed_on,
        staff_user=investigator,
        now=max(now - timedelta(days=1), datetime.combine(completed_on, datetime.min.time(), UTC)),
    )
    corrected = _assessment(CORRECTED_PATIENT, "baseline")
    if corrected.status == AssessmentStatus.COMPLETED:
        current = next(
            (a.value for a in corrected.answers if a.instrument == "qlq_c30" and a.item == 29),
            None,
        )
        correct_answer(
            corrected,
            "qlq_c30",
            29,
            4 if current != 4 else 5,
            "Trascrizione errata dal modulo cartaceo (demo)",
            staff_user=investigator,
            now=now - timedelta(days=2),
        )
