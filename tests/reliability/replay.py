"""Every page save and submission sent several times at the same moment (a double tap, a retry)."""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from dataclasses import dataclass, field

from flask import Flask

from tests.factories import Enrolled
from tests.reliability import cohort as db_checks
from tests.reliability.load import ITEMS_PER_ASSESSMENT
from tests.reliability.patient_flow import (
    Figures,
    PatientBrowser,
    UnexpectedResponse,
    answers_in,
    form_fields,
    run_journeys,
    transport_problems,
)

OPERATIONS_PER_PATIENT = 13  # 12 pages of 51 items (5 a page, sections whole) and the submission
SCORES_PER_ASSESSMENT = 15 + 1 + 10  # QLQ-C30 scales and summary score, QLQ-GI.NET21 scales


@dataclass
class ReplayRun:
    figures: Figures
    seconds: float
    copies: int
    operations: int = 0  # distinct saves and submissions, each sent `copies` times
    replies: Counter[str] = field(default_factory=Counter)  # "302 /q/page/n" shapes
    sent: dict[int, dict[str, int]] = field(default_factory=dict)
    patient_failures: list[str] = field(default_factory=list)


def patients_for(operations: int) -> int:
    """How many patients make at least this many distinct operations."""
    return math.ceil(operations / OPERATIONS_PER_PATIENT)


async def _replayed(browser: PatientBrowser, run: ReplayRun, path: str, form: dict[str, str]):  # type: ignore[no-untyped-def]
    """Send the same form `copies` times at once; every copy must be answered alike."""
    replies = await asyncio.gather(
        *(browser.request("POST", path, data=form) for _ in range(run.copies))
    )
    run.operations += 1
    shapes = {f"{reply.status_code} {reply.headers.get('Location', '')}" for reply in replies}
    for shape in shapes:
        run.replies[shape.split()[0]] += 1
    if len(shapes) != 1 or replies[0].status_code != 302:
        raise UnexpectedResponse(f"replays of POST {path} answered {sorted(shapes)}")
    return replies[0]


async def _answer_with_replays(
    browser: PatientBrowser, run: ReplayRun, token: str, rng: random.Random
) -> dict[str, int]:
    sent: dict[str, int] = {}
    number, html = await browser.open_link(token)
    while number:
        form = browser.page_post(number, html, rng)
        sent |= answers_in(form)
        moved = await _replayed(browser, run, f"/q/page/{number}", form)
        number, html = await browser.follow(moved.headers["Location"])
    form = {**form_fields(html, "/q/review"), "action": "submit"}
    done = await _replayed(browser, run, "/q/review", form)
    if done.headers["Location"] != "/q":
        raise UnexpectedResponse("submission did not lead back to the questionnaire")
    await browser.expect("GET", "/q", 200)
    return sent


def run_replays(base_url: str, patients: list[Enrolled], copies: int = 3) -> ReplayRun:
    """All patients at once; each of their saves and submissions sent `copies` times together."""
    run = ReplayRun(Figures(), 0.0, copies)

    done = run_journeys(
        base_url,
        [patient.patient_id for patient in patients],
        [patient.token for patient in patients],
        run.figures,
        lambda browser, token, i: _answer_with_replays(
            browser, run, token, random.Random(1_000 + i)
        ),
    )
    run.seconds, run.sent, run.patient_failures = done.seconds, done.sent, done.failures
    return run


def verify_replays(app: Flask, patients: list[Enrolled], run: ReplayRun, log: str) -> list[str]:
    """Everything stored more or less than once: answers, submissions, their audit rows, scores."""
    problems = transport_problems(run.patient_failures, run.figures)
    assessments = db_checks.baseline_ids(app, patients)
    stored = db_checks.stored_answers(app, assessments.values())
    if (rows := db_checks.answer_rows(app)) != len(patients) * ITEMS_PER_ASSESSMENT:
        problems.append(f"{rows} answer rows for {len(patients)} patients")
    if any(stored.get(assessments[p.patient_id]) != run.sent.get(p.patient_id) for p in patients):
        problems.append("stored answers differ from those sent")
    if (states := db_checks.statuses(app, assessments.values())) != {"completed": len(patients)}:
        problems.append(f"assessment statuses {dict(states)}")
    submits = db_checks.audit_counts(app, "assessment.submit")
    if submits != Counter({str(a): 1 for a in assessments.values()}):
        problems.append(f"submission audit rows: {sorted(Counter(submits.values()).items())}")
    scores = db_checks.score_rows(app)
    if scores != Counter(dict.fromkeys(assessments.values(), SCORES_PER_ASSESSMENT)):
        problems.append(f"score rows per assessment: {sorted(Counter(scores.values()).items())}")
    problems += [f"server log: {line}" for line in db_checks.log_problems(log)[:5]]
    return problems
