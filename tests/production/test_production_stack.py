"""The production stack, end to end, as a site runs it on one machine.

gunicorn (deploy/gunicorn.conf.py, 2 workers, TLS) on a PostgreSQL database of its own, the
`pro-app scheduler` process and a local SMTP server. A nurse enrols a patient through the staff
pages; the scheduler e-mails the invitation; the patient answers the whole baseline
questionnaire through the e-mailed link in headless Chromium on a phone-sized screen; an analyst
downloads the scores export, whose QLQ-C30 scores must equal an independent scoring of the
answers given.
"""

from __future__ import annotations

import csv
import html
import importlib.util
import io
import random
import re
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.message import Message as MimeMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import ViewportSize

from pro_app.protocol.eligibility import load_checklist
from pro_app.protocol.schedule import load_schedule
from pro_app.staff.enrolment_forms import TIMEZONES
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import POSTGRES_URI
from tests.factories import csrf_token
from tests.production import stack
from tests.reliability.aio import in_thread
from tests.reliability.live_server import PROJECT_ROOT, LiveServer
from tests.smtp_server import free_port
from tests.unit.reference_scoring import score_qlq_c30

NEEDS_POSTGRES = pytest.mark.skipif(
    not POSTGRES_URI,
    reason="the production stack runs on PostgreSQL: set PRO_TEST_DATABASE_URI "
    "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)",
)
NEEDS_REDIS = pytest.mark.skipif(
    importlib.util.find_spec("redis") is None,
    reason="production refuses per-process rate limits with 2 workers, and Redis storage "
    "needs the Python package redis (not installed); a Redis server on 127.0.0.1:6379 too",
)

QUESTIONNAIRES = PROJECT_ROOT / "questionnaires"
SITE = "MI01"
NURSE = "infermiera@mi01.example.org"
ANALYST = "statistico@example.org"
PASSWORD = "una-password-lunga-per-il-test"
PATIENT = "MI01-0007"
PATIENT_EMAIL = "paziente.0007@example.org"
PHONE: ViewportSize = {"width": 360, "height": 740}
INVITATION_TIMEOUT = 60.0
LINK = re.compile(r"https://127\.0\.0\.1:\d+/p/[A-Za-z0-9_-]+")
ANY_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
EXPORT_LINK = re.compile(r'href="(/analyst/export/scores\.csv[^"]*)"')


@dataclass
class Stack:
    env: dict[str, str]
    certificate: stack.Certificate
    mail: stack.MailServer
    web: LiveServer
    scheduler: stack.SchedulerProcess
    patient_zone: str


@pytest.fixture
def production(tmp_path: Path) -> Iterator[Stack]:
    """The whole stack on a scratch database; every process stopped (SIGTERM), database dropped."""
    zone, questionnaire_dir = patient_zone(datetime.now(UTC), tmp_path)
    with ExitStack() as running:
        database_uri = running.enter_context(stack.scratch_database(POSTGRES_URI))
        mail = running.enter_context(stack.mail_server())
        env = stack.production_env(
            database_uri,
            tmp_path,
            web_port=free_port(),
            mail_port=mail.port,
            PRO_SCHEDULER_INTERVAL_SECONDS="2",
            PRO_QUESTIONNAIRE_DIR=str(questionnaire_dir),
            **running.enter_context(stack.rate_limit_storage()),
        )
        stack.run_cli(env, "init-db")
        assert "All checks passed." in stack.run_cli(env, "check")
        stack.run_cli(env, "site", "add", SITE, "Milano")
        staff_env = {**env, "PRO_NEW_PASSWORD": PASSWORD}
        stack.run_cli(staff_env, "staff", "add", NURSE, "--role", "nurse", "--site", SITE)
        stack.run_cli(staff_env, "staff", "add", ANALYST, "--role", "analyst")
        certificate = stack.issue_certificate(tmp_path / "tls")
        web = running.enter_context(stack.web_server(env, tmp_path, certificate))
        scheduler = running.enter_context(stack.scheduler_process(env, tmp_path))
        name = database_uri.rsplit("/", 1)[1]
        yield Stack(env, certificate, mail, web, scheduler, zone)
    assert not stack.database_exists(POSTGRES_URI, name)
    assert web.process.returncode is not None
    assert scheduler.process.returncode is not None


def patient_zone(now: datetime, folder: Path) -> tuple[str, Path]:
    """A time zone of the enrolment form where messages may go out now, and the
    questionnaire directory to use.

    Nothing is sent in the schedule's quiet hours, so the first zone of the form's list where it
    is not quiet now (nor in ten minutes) is chosen. Around 02:00-08:00 in Rome it is quiet in
    every listed zone; then a copy of questionnaires/ whose only change is a quiet-hours span
    away from now is used instead, so that the test passes at any hour.
    """
    schedule = load_schedule(QUESTIONNAIRES / "schedule.yaml")
    for zone in TIMEZONES:
        local = now.astimezone(ZoneInfo(zone))
        if not any(
            schedule.reminders.is_quiet_time((local + timedelta(minutes=m)).time()) for m in (0, 10)
        ):
            return zone, QUESTIONNAIRES
    copy = shutil.copytree(QUESTIONNAIRES, folder / "questionnaires")
    text = (copy / "schedule.yaml").read_text(encoding="utf-8")
    quiet = re.compile(r'quiet_hours: \{start: "[0-9:]+", end: "[0-9:]+"\}')
    assert len(quiet.findall(text)) == 1, "schedule.yaml: quiet_hours line not found"
    # It is night in Rome now, far from 20:00-21:00; the 10:00 send time stays outside it too.
    (copy / "schedule.yaml").write_text(
        quiet.sub('quiet_hours: {start: "20:00", end: "21:00"}', text), encoding="utf-8"
    )
    return TIMEZONES[0], copy


class StaffBrowser:
    """A member of staff over HTTPS: cookies kept, no redirects followed, one new connection
    per request (so that either worker may accept it), and the worker of every response noted."""

    def __init__(self, web: LiveServer, certificate: stack.Certificate) -> None:
        self.web = web
        self.workers: list[int | None] = []
        self.client = httpx.Client(
            base_url=web.url,
            verify=certificate.client_context(),
            timeout=60,
            limits=httpx.Limits(max_keepalive_connections=0),
            event_hooks={"response": [self._note_worker]},
        )

    def _note_worker(self, response: httpx.Response) -> None:
        # Called before the body is read: the connection is still open at both ends.
        client_port = response.extensions["network_stream"].get_extra_info("client_addr")[1]
        self.workers.append(stack.serving_worker(self.web, client_port))

    def close(self) -> None:
        self.client.close()

    def get(self, path: str, status: int = 200) -> httpx.Response:
        return self._expect(self.client.get(path), status)

    def post_form(self, path: str, data: dict[str, str], status: int = 302) -> httpx.Response:
        """GET the page, then POST its form with the page's CSRF token, as a browser would."""
        page = self.get(path)
        # Over https, Flask-WTF also wants the Referer of the page the form was on.
        posted = self.client.post(
            path,
            data={"csrf_token": csrf_token(page.text), **data},
            headers={"Referer": str(page.url)},
        )
        return self._expect(posted, status)

    def sign_in(self, email: str) -> None:
        signed_in = self.post_form("/auth/sign-in", {"email": email, "password": PASSWORD})
        assert signed_in.headers["Location"].startswith("/"), signed_in.headers["Location"]

    @staticmethod
    def _expect(response: httpx.Response, status: int) -> httpx.Response:
        assert response.status_code == status, (
            f"{response.request.method} {response.request.url.path}: {response.status_code}"
        )
        return response


def enrolment_form(zone: str) -> dict[str, str]:
    """An eligible patient randomized today (in the patient's zone), reached by e-mail only."""
    checklist = load_checklist(QUESTIONNAIRES / "eligibility.yaml")
    return {
        "study_code": PATIENT,
        "arm": "tae",
        "randomized_on": datetime.now(ZoneInfo(zone)).date().isoformat(),
        "language": "it",
        "timezone": zone,
        "email": PATIENT_EMAIL,
        "preferred_channel": "email",
        **{
            f"eligibility_{criterion.code}": "yes" if criterion.kind == "inclusion" else "no"
            for criterion in checklist.criteria
        },
    }


def plain_text(message: MimeMessage) -> str:
    """The text/plain part of an e-mail, decoded."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("the e-mail has no text/plain part")


def answer_whole_questionnaire(link: str, certificate: stack.Certificate) -> dict[str, int]:
    """The patient, on a phone, answers every item and submits; returns the answers given."""
    from playwright.sync_api import sync_playwright

    rng = random.Random(7)
    given: dict[str, int] = {}
    # Chromium trusts the server's own key (pinned) rather than ignoring every TLS error.
    args = [*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={certificate.spki_pin()}"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            context = browser.new_context(
                viewport=PHONE, is_mobile=True, has_touch=True, locale="it-IT"
            )
            page = context.new_page()
            page.goto(link)
            page.click("button[name=action][value=start]")
            page.wait_for_url(re.compile(r"/q/page/1$"))
            while "/q/review" not in page.url:
                given |= answer_visible_items(page, rng)
                page.click("button[name=action][value=next]")
                page.wait_for_load_state()
            page.click("button[name=action][value=submit]")
            page.wait_for_url(re.compile(r"/q$"))
            assert "Grazie!" in page.content()
            context.close()
        finally:
            browser.close()
    return given


def answer_visible_items(page: Any, rng: random.Random) -> dict[str, int]:
    """Tap one answer, chosen at random among its options, for each question on the page."""
    options: dict[str, list[int]] = {}
    for name, value in page.eval_on_selector_all(
        "input[type=radio]", "els => els.map(e => [e.name, e.value])"
    ):
        options.setdefault(name, []).append(int(value))
    chosen = {name: rng.choice(values) for name, values in sorted(options.items())}
    for name, value in chosen.items():
        page.locator(f"input[name='{name}'][value='{value}']").check()
    return chosen


def baseline_c30_scores(export_csv: str) -> dict[str, float | None]:
    """The patient's baseline QLQ-C30 scores from the scores export (empty cell = None)."""
    rows = [
        row
        for row in csv.DictReader(io.StringIO(export_csv))
        if (row["study_code"], row["timepoint"], row["instrument"])
        == (PATIENT, "baseline", "qlq_c30")
    ]
    return {row["scale"]: float(row["score"]) if row["score"] else None for row in rows}


def download_from_each_worker(analyst: StaffBrowser, path: str, workers: list[int]) -> list[str]:
    """The export once from each worker, the others paused meanwhile so that only it accepts
    the connection: the analyst's session, opened on one worker, must hold on the other."""
    downloads = []
    for worker in workers:
        with stack.paused([pid for pid in workers if pid != worker]):
            downloads.append(analyst.get(path).text)
        assert analyst.workers[-1] == worker
    return downloads


def wait_until_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(Path(f"/proc/{pid}").exists() for pid in pids):
        assert time.monotonic() < deadline, f"processes still running: {pids}"
        time.sleep(0.1)


def test_at_night_a_copy_of_the_questionnaires_moves_only_the_quiet_hours(tmp_path: Path) -> None:
    night_in_rome = datetime(2026, 11, 24, 3, 30, tzinfo=ZoneInfo("Europe/Rome"))
    zone, copy = patient_zone(night_in_rome, tmp_path)
    assert (zone, copy) == ("Europe/Rome", tmp_path / "questionnaires")
    original, moved = (load_schedule(folder / "schedule.yaml") for folder in (QUESTIONNAIRES, copy))
    assert not moved.reminders.is_quiet_time(night_in_rome.time())
    assert moved.reminders.is_quiet_time(datetime(2026, 11, 24, 20, 30).time())
    assert replace(moved, reminders=original.reminders) == original
    copied = sorted(path.relative_to(copy) for path in copy.rglob("*"))
    assert copied == sorted(path.relative_to(QUESTIONNAIRES) for path in QUESTIONNAIRES.rglob("*"))


def test_by_day_the_patient_zone_is_rome_and_the_files_are_the_real_ones(tmp_path: Path) -> None:
    noon_in_rome = datetime(2026, 11, 24, 12, 0, tzinfo=ZoneInfo("Europe/Rome"))
    assert patient_zone(noon_in_rome, tmp_path) == ("Europe/Rome", QUESTIONNAIRES)
    evening_in_rome = datetime(2026, 11, 24, 20, 30, tzinfo=ZoneInfo("Europe/Rome"))
    assert patient_zone(evening_in_rome, tmp_path) == ("Europe/London", QUESTIONNAIRES)


@pytest.mark.postgres
@pytest.mark.browser
@NEEDS_REDIS
@NEEDS_POSTGRES
def test_enrol_invite_answer_and_export_on_the_production_stack(production: Stack) -> None:
    started = time.monotonic()
    workers = production.web.worker_pids()
    assert len(workers) == 2

    nurse = StaffBrowser(production.web, production.certificate)
    analyst = StaffBrowser(production.web, production.certificate)
    try:
        nurse.sign_in(NURSE)
        enrolled = nurse.post_form("/staff/enrol", enrolment_form(production.patient_zone))
        assert re.search(r"/staff/patients/\d+/link$", enrolled.headers["Location"])

        # The scheduler process, not the web worker, sends the invitation.
        invitation = production.mail.wait_for_message(INVITATION_TIMEOUT)
        assert invitation["To"] == PATIENT_EMAIL
        links = LINK.findall(plain_text(invitation))
        assert links
        assert all(link.startswith(production.env["PRO_BASE_URL"]) for link in links)
        link = links[0]
        token = link.rsplit("/", 1)[1]

        # Playwright's sync API needs a thread without a running event loop.
        given = in_thread(lambda: answer_whole_questionnaire(link, production.certificate))
        assert len(given) == 51  # QLQ-C30 (30 items) and QLQ-GI.NET21 (21 items)

        analyst.sign_in(ANALYST)
        analyst_page = analyst.get("/analyst/").text
        found = EXPORT_LINK.search(analyst_page)
        assert found, "no scores CSV link on the analyst page"
        exports = download_from_each_worker(analyst, html.unescape(found[1]), workers)
    finally:
        nurse.close()
        analyst.close()

    assert exports[0] == exports[1], "the two workers exported different files"
    c30 = {
        int(name.removeprefix("qlq_c30-")): v
        for name, v in given.items()
        if name.startswith("qlq_c30-")
    }
    assert sorted(c30) == list(range(1, 31))
    expected = score_qlq_c30(c30)
    exported = baseline_c30_scores(exports[0])
    assert set(exported) == set(expected)
    for scale, value in expected.items():
        assert exported[scale] == pytest.approx(value, abs=1e-9), scale

    served = [*nurse.workers, *analyst.workers]
    assert None not in served, "a staff response came from no known worker"
    assert set(served) == set(workers)

    # One pass sent the invitation (the summary line, or the structured event).
    scheduler_log = production.scheduler.log()
    assert re.search(r'dispatcher pass.*(\bsent 1\b|"sent": 1\b)', scheduler_log), scheduler_log
    assert production.scheduler.stop() == 0
    assert "Scheduler stopped." in production.scheduler.log()
    assert stack.stop_process(production.web.process) == 0
    wait_until_gone(workers, 10)

    web_log = production.web.log()
    for name, log in (("gunicorn", web_log), ("scheduler", production.scheduler.log())):
        assert token not in log, f"the {name} log holds the link token"
        assert not ANY_EMAIL.search(log), f"the {name} log holds an e-mail address"
        assert "Traceback" not in log, f"the {name} log holds an error:\n{log[-3000:]}"
    print(
        f"\nproduction stack: flow {time.monotonic() - started:.1f} s; staff responses per "
        f"worker {sorted(Counter(served).values())}"
    )
