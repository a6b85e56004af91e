"""The load scenario shared by the fast test and the bench: everyone answers everything at once."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

from flask import Flask

from tests.factories import Enrolled
from tests.reliability import cohort as db_checks
from tests.reliability.aio import run_async
from tests.reliability.patient_flow import Figures, PatientBrowser, run_all

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

    async def everyone() -> list[object]:
        browsers = [PatientBrowser(base_url, figures) for _ in patients]
        try:
            return await run_all(
                len(patients),
                lambda i: browsers[i].answer_everything(
                    patients[i].token, random.Random(seed * 100_003 + i)
                ),
            )
        finally:
            await asyncio.gather(*(browser.close() for browser in browsers))

    started = time.perf_counter()
    results = run_async(everyone)
    seconds = time.perf_counter() - started
    run = LoadRun(figures, seconds, {})
    for patient, result in zip(patients, results, strict=True):
        if isinstance(result, BaseException):
            run.patient_failures.append(f"{type(result).__name__}: {result}")
        else:
            run.sent[patient.patient_id] = result  # type: ignore[assignment]
    return run


def verify_load(app: Flask, patients: list[Enrolled], run: LoadRun, log: str) -> list[str]:
    """Everything that went wrong: answers missing, duplicated or different, 5xx, lock errors."""
    problems: list[str] = []
    if run.patient_failures:
        problems.append(f"{len(run.patient_failures)} patients failed: {run.patient_failures[:3]}")
    if run.figures.server_errors or run.figures.failures:
        problems.append(f"responses: {dict(run.figures.statuses)}, {run.figures.failures[:3]}")
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
