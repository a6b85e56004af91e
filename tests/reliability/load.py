"""The load scenario shared by the fast test and the bench: everyone answers everything at once."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from flask import Flask

from tests.factories import Enrolled
from tests.reliability import cohort as db_checks
from tests.reliability.patient_flow import Figures, run_journeys, transport_problems

ITEMS_PER_ASSESSMENT = 51  # QLQ-C30 (30) + QLQ-GI.NET21 (21) at baseline


@dataclass
class LoadRun:
    figures: Figures
    seconds: float
    sent: dict[int, dict[str, int]]  # patient id → answers sent
    patient_failures: list[str] = field(default_factory=list)


def run_load(base_url: str, patients: list[Enrolled], seed: int = 7) -> LoadRun:
    """All patients open their link, answer every page and submit, starting together."""
    figures = Figures()
    done = run_journeys(
        base_url,
        [patient.patient_id for patient in patients],
        [patient.token for patient in patients],
        figures,
        lambda browser, token, i: browser.answer_everything(
            token, random.Random(seed * 100_003 + i)
        ),
    )
    return LoadRun(figures, done.seconds, done.sent, done.failures)


def verify_load(app: Flask, patients: list[Enrolled], run: LoadRun, log: str) -> list[str]:
    """Everything that went wrong: answers missing, duplicated or different, 5xx, lock errors."""
    problems = transport_problems(run.patient_failures, run.figures)
    assessments = db_checks.baseline_ids(app, patients)
    stored = db_checks.stored_answers(app, assessments.values())
    expected_rows = len(patients) * ITEMS_PER_ASSESSMENT
    if (rows := db_checks.answer_rows(app)) != expected_rows:
        problems.append(f"{rows} answer rows, expected {expected_rows}")
    differing = [
        patient.study_code
        for patient in patients
        if stored.get(assessments[patient.patient_id]) != run.sent.get(patient.patient_id)
    ]
    if differing:
        problems.append(f"{len(differing)} patients' stored answers differ from those sent")
    status_counts = db_checks.statuses(app, assessments.values())
    if status_counts != {"completed": len(patients)}:
        problems.append(f"assessment statuses {dict(status_counts)}")
    submits = db_checks.audit_counts(app, "assessment.submit")
    if sorted(submits.values()) != [1] * len(patients):
        problems.append(f"submission audit rows per assessment: {sorted(submits.values())[-3:]}")
    problems += [f"server log: {line}" for line in db_checks.log_problems(log)[:5]]
    return problems
