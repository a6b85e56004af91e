"""A web worker killed (SIGKILL) in the middle of page saves: whole pages or none; retries work."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from flask import Flask

from pro_app.extensions import db
from pro_app.models import Assessment
from pro_app.services import answering
from tests.factories import Enrolled
from tests.reliability import cohort as db_checks
from tests.reliability.aio import run_async
from tests.reliability.live_server import LiveServer, live_server
from tests.reliability.load import ITEMS_PER_ASSESSMENT
from tests.reliability.patient_flow import Figures, PatientBrowser, answers_in

PATIENTS = 12
CRASH_CONFIG = Path(__file__).with_name("gunicorn_crash.py")
KILL_AT_INSERT = 40  # of one worker: about 8 pages into the run, every patient mid-questionnaire
RETRY_SECONDS = 120.0  # a respawned worker boots the app; slow on a loaded machine


@dataclass
class Walker:
    """One patient going through the questionnaire, able to stop at an error and resume there."""

    browser: PatientBrowser
    patient: Enrolled
    rng: random.Random
    step: str = "open"  # open → page ⇄ goto → review → done
    number: int = 0
    html: str = ""
    location: str = ""
    form: dict[str, str] | None = None  # posted, not yet confirmed: resent as it was
    sent: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    async def walk(self) -> None:
        while self.step != "done":
            await self._next()

    async def _next(self) -> None:
        browser = self.browser
        if self.step == "open":
            self.number, self.html = await browser.open_link(self.patient.token)
            self.step = "page" if self.number else "review"
        elif self.step == "page":
            self.form = self.form or browser.page_post(self.number, self.html, self.rng)
            moved = await browser.expect("POST", f"/q/page/{self.number}", 302, data=self.form)
            self.sent |= answers_in(self.form)
            self.form, self.location, self.step = None, moved.headers["Location"], "goto"
        elif self.step == "goto":
            self.number, self.html = await browser.follow(self.location)
            self.step = "page" if self.number else "review"
        else:
            await browser.submit(self.html)
            self.step = "done"


async def _walk_all(walkers: list[Walker]) -> None:
    async def one(walker: Walker) -> None:
        try:
            await walker.walk()
        except httpx.TransportError as error:
            walker.errors.append(f"{walker.step}: {type(error).__name__}")

    await asyncio.gather(*(one(walker) for walker in walkers))


def _page_fields(app: Flask, patients: list[Enrolled]) -> dict[int, list[frozenset[str]]]:
    """Baseline assessment id → the field names of each of its pages."""
    with app.app_context():
        ids = db_checks.baseline_ids(app, patients)
        return {
            assessment_id: [
                frozenset(page.field_names)
                for page in answering.pages_for(db.session.get(Assessment, assessment_id))  # type: ignore[arg-type]
            ]
            for assessment_id in ids.values()
        }


def _half_saved_pages(app: Flask, pages: dict[int, list[frozenset[str]]]) -> list[str]:
    """Pages with some but not all of their items stored."""
    stored = db_checks.stored_answers(app, pages)
    half = []
    for assessment_id, fields in pages.items():
        names = set(stored.get(assessment_id, {}))
        half += [
            f"assessment {assessment_id} page {number}: {len(names & page)} of {len(page)}"
            for number, page in enumerate(fields, start=1)
            if names & page and not page <= names
        ]
    return half


def _wait_for_kill(server: LiveServer, crash_dir: Path) -> int:
    deadline = time.monotonic() + RETRY_SECONDS
    while time.monotonic() < deadline:
        killed = list(crash_dir.glob("killed-*"))
        if killed:
            pid = int(killed[0].name.removeprefix("killed-"))
            server.wait_for_workers(2, exclude=frozenset({pid}))
            return pid
        time.sleep(0.1)
    raise AssertionError("no worker was killed")


def test_a_worker_killed_mid_save_leaves_whole_pages_and_the_retry_succeeds(
    app: Flask, database_uri: str, tmp_path: Path
) -> None:
    patients = db_checks.enrol_cohort(app, PATIENTS, prefix="CR")
    crash_dir = tmp_path / "crash"
    crash_dir.mkdir()
    (crash_dir / "armed").write_text(str(KILL_AT_INSERT))
    figures = Figures()
    with live_server(
        database_uri,
        tmp_path / "server",
        settings={"PRO_TEST_CRASH_DIR": str(crash_dir)},
        gunicorn_config=CRASH_CONFIG,
    ) as server:

        async def first_round() -> list[Walker]:
            walkers = [
                Walker(PatientBrowser(server.url, figures), patient, random.Random(index))
                for index, patient in enumerate(patients)
            ]
            await _walk_all(walkers)  # each stops at its first lost connection
            await asyncio.gather(*(walker.browser.close() for walker in walkers))
            return walkers

        walkers = run_async(first_round)
        killed_pid = _wait_for_kill(server, crash_dir)
        cut_off_in_a_save = [w for w in walkers if w.errors and w.step == "page" and w.form]
        half_saved = _half_saved_pages(app, _page_fields(app, patients))

        async def retry_round() -> None:
            for walker in walkers:  # the same patients, cookies and pending forms
                cookies = walker.browser.client.cookies
                walker.browser = PatientBrowser(server.url, figures)
                walker.browser.client.cookies = cookies
                walker.browser.retry_until = time.monotonic() + RETRY_SECONDS
            await _walk_all(walkers)
            await asyncio.gather(*(walker.browser.close() for walker in walkers))

        run_async(retry_round)
        log = server.log()

    assert cut_off_in_a_save, "the killed save's patient lost the connection"
    assert half_saved == []  # each page wholly saved or absent, right after the crash
    # Every patient resumed where the connection was lost and finished.
    assert [walker.errors for walker in walkers if walker.step != "done"] == []
    ids = db_checks.baseline_ids(app, patients)
    stored = db_checks.stored_answers(app, ids.values())
    assert all(stored[ids[w.patient.patient_id]] == w.sent for w in walkers)
    assert db_checks.answer_rows(app) == PATIENTS * ITEMS_PER_ASSESSMENT
    assert db_checks.statuses(app, ids.values()) == {"completed": PATIENTS}
    assert figures.server_errors == 0
    assert f"Worker (pid:{killed_pid}) was sent SIGKILL" in log
    assert db_checks.log_problems(log) == []
