"""The database out of reach for real: friendly 503 pages, /healthz red then green, nothing lost.

SQLite: the folder holding the file is moved away and pooled connections dropped, so every
connect fails as it would on a lost disk. PostgreSQL: the app talks to the server through a
small TCP proxy that the test stops (cutting every open connection) and starts again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from pro_app.extensions import db
from pro_app.models import Answer, Assessment, Patient, StaffUser
from pro_app.models.types import utcnow
from pro_app.protocol.eligibility import load_checklist
from pro_app.services import api_tokens
from pro_app.services.dispatch import dispatch_due_messages
from pro_app.services.senders import senders
from tests import factories
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import make_config
from tests.reliability.aio import in_thread
from tests.thread_server import serving

NURSE = "nurse@mi01.example.org"
# How long the browser test keeps the database away (PRO_OUTAGE_SECONDS=60 for a minute).
OUTAGE_SECONDS = float(os.environ.get("PRO_OUTAGE_SECONDS", "0"))
PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHECKLIST = load_checklist(PROJECT_ROOT / "questionnaires" / "eligibility.yaml")
# What a stack trace or a driver message would show; none of it may reach a user.
INTERNALS = ("Traceback", "OperationalError", "sqlite", "psycopg", "SELECT", 'File "')
KEPT_INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
RETRY_BUTTON = re.compile(r'<button type="submit" class="primary" name="action" value="(\w+)">')


class Outage(Protocol):
    def begin(self) -> None: ...
    def end(self) -> None: ...


class TcpProxy:
    """127.0.0.1:port → the database server; stop() cuts every connection, start() reopens."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def _run(self, coroutine: Any) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def start(self) -> None:
        self._run(self._start())

    def stop(self) -> None:
        self._run(self._stop())

    def close(self) -> None:
        if self._server is not None:
            self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> None:
        # The same port again, so that the app's configured address works after the outage.
        self._server = await asyncio.start_server(self._connect, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()  # a cable pulled: no goodbye to either side
        self._writers.clear()
        await self._server.wait_closed()
        self._server = None

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, upstream_writer}
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()


class ProxyOutage:
    def __init__(self, proxy: TcpProxy) -> None:
        self.proxy = proxy

    def begin(self) -> None:
        self.proxy.stop()

    def end(self) -> None:
        self.proxy.start()


class SqliteOutage:
    """Move the database's folder away: new connections fail with "unable to open database"."""

    def __init__(self, app: Flask, folder: Path) -> None:
        self.app, self.folder = app, folder
        self.away = folder.with_name(folder.name + "-away")

    def begin(self) -> None:
        with self.app.app_context():
            db.engine.dispose()  # open connections would keep the moved file alive
        os.rename(self.folder, self.away)

    def end(self) -> None:
        os.rename(self.away, self.folder)


@pytest.fixture
def proxy(database_uri: str) -> Iterator[TcpProxy | None]:
    if not database_uri.startswith("postgresql"):
        yield None
        return
    url = make_url(database_uri)
    running = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    running.start()
    yield running
    running.close()


@pytest.fixture
def app_config(database_uri: str, proxy: TcpProxy | None, tmp_path: Path) -> dict[str, Any]:
    if proxy is not None:
        url = make_url(database_uri).set(host="127.0.0.1", port=proxy.port)
        uri = url.render_as_string(hide_password=False)
    else:
        uri = f"sqlite:///{tmp_path / 'database' / 'test.sqlite3'}"
    return make_config(uri, RATELIMIT_ENABLED=False)


@pytest.fixture
def outage(app: Flask, proxy: TcpProxy | None, tmp_path: Path) -> Outage:
    """The way to cut this test's database off; database_down() always restores it."""
    return ProxyOutage(proxy) if proxy else SqliteOutage(app, tmp_path / "database")


@contextlib.contextmanager
def database_down(outage: Outage) -> Iterator[None]:
    """The database out of reach inside the block, back (for the app's teardown too) after."""
    outage.begin()
    try:
        yield
    finally:
        outage.end()


def friendly(html: str) -> None:
    """A page a person can read: no stack trace, no driver message, no SQL."""
    leaked = [word for word in INTERNALS if word in html]
    assert leaked == [], leaked
    assert "<h1>" in html


def stored_answers(app: Flask) -> dict[str, int | None]:
    with app.app_context():
        return {f"{a.instrument}-{a.item}": a.value for a in db.session.scalars(db.select(Answer))}


def first_page_answers() -> dict[str, str]:
    return {f"qlq_c30-{n}": str(1 + n % 4) for n in range(1, 6)}


def test_health_check_turns_red_then_green(client: FlaskClient, outage: Outage) -> None:
    assert client.get("/healthz").status_code == 200
    with database_down(outage):
        red = client.get("/healthz")
        assert red.status_code == 503
        assert red.json == {"status": "error", "database": "unreachable"}
    started = time.perf_counter()
    green = client.get("/healthz")
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert green.status_code == 200
    assert green.json == {"status": "ok", "database": "ok", "scheduler": "never"}
    print(f"healthz green {elapsed_ms:.0f} ms after the database came back")


def test_a_page_posted_during_the_outage_is_kept_in_the_patients_language(
    app: Flask, client: FlaskClient, outage: Outage
) -> None:
    # An English patient whose browser asks for nothing: only the session knows the language.
    html = factories.open_link(client, factories.enrol(app, language="en"))
    answers = first_page_answers()
    with database_down(outage):
        refused = client.post(
            "/q/page/1", data={**factories.hidden_fields(html), "action": "next", **answers}
        )
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "30"
        assert '<html lang="en">' in refused.text
        assert "kept on this page" in refused.text
        friendly(refused.text)
    kept = dict(KEPT_INPUT.findall(refused.text))
    assert {name: kept[name] for name in answers} == answers
    assert kept["form_key"] == factories.form_key(html)
    button = RETRY_BUTTON.search(refused.text)
    assert button is not None
    assert stored_answers(app) == {}  # nothing half-written while the database was away
    # "Try again" posts the kept page as it was: saved, and the patient moves on.
    retried = client.post("/q/page/1", data={**kept, "action": button.group(1)})
    assert retried.status_code == 302
    assert retried.headers["Location"] == "/q/page/2"
    assert stored_answers(app) == {name: int(value) for name, value in answers.items()}


def test_a_kept_page_is_saved_even_if_the_session_expired_meanwhile(
    app: Flask, client: FlaskClient, outage: Outage
) -> None:
    html = factories.open_link(client, factories.enrol(app))
    answers = first_page_answers()
    with database_down(outage):
        refused = client.post(
            "/q/page/1", data={**factories.hidden_fields(html), "action": "next", **answers}
        )
        assert refused.status_code == 503
        assert '<html lang="it">' in refused.text
    kept = dict(KEPT_INPUT.findall(refused.text))
    # A long outage: the patient's session and the page's CSRF token are gone by now.
    other_device = app.test_client()
    restored = other_device.post("/q/page/1", data={**kept, "action": "next"})
    assert restored.status_code == 200  # the session restored, the answers shown again
    for name, value in answers.items():
        assert f'name="{name}" value="{value}" checked' in restored.text
    resent = other_device.post(
        "/q/page/1", data={**factories.hidden_fields(restored.text), "action": "next", **answers}
    )
    assert resent.status_code == 302
    assert stored_answers(app) == {name: int(value) for name, value in answers.items()}


def test_autosave_during_the_outage_asks_the_page_script_to_retry(
    app: Flask, client: FlaskClient, outage: Outage
) -> None:
    html = factories.open_link(client, factories.enrol(app))
    headers = {"X-CSRFToken": factories.csrf_token(html)}
    payload = {"form_key": factories.form_key(html), "name": "qlq_c30-3", "value": "4"}
    with database_down(outage):
        refused = client.post("/q/answer", json=payload, headers=headers)
    # patient.js keeps the tap in its queue for any status >= 500 and sends it again later.
    assert refused.status_code == 503
    assert refused.json == {"status": "unavailable"}
    assert refused.headers["Retry-After"] == "30"
    retried = client.post("/q/answer", json=payload, headers=headers)
    assert retried.status_code == 200, retried.text
    assert stored_answers(app) == {"qlq_c30-3": 4}


def test_a_submission_during_the_outage_counts_once_when_sent_again(
    app: Flask, client: FlaskClient, outage: Outage
) -> None:
    enrolled = factories.enrol(app)
    html = factories.open_link(client, enrolled)
    number = 1
    while True:  # every page answered; then the review page with its submit button
        names = sorted(set(re.findall(r'type="radio" name="([a-z0-9_]+-\d+)"', html)))
        data = {**factories.hidden_fields(html), "action": "next", **dict.fromkeys(names, "1")}
        location = client.post(f"/q/page/{number}", data=data).headers["Location"]
        html = client.get(location).text
        if location == "/q/review":
            break
        number += 1
    with database_down(outage):
        review = {"csrf_token": factories.csrf_token(html), "form_key": factories.form_key(html)}
        refused = client.post("/q/review", data={**review, "action": "submit"})
        assert refused.status_code == 503
        friendly(refused.text)
    kept = dict(KEPT_INPUT.findall(refused.text))
    button = RETRY_BUTTON.search(refused.text)
    assert button is not None
    assert button.group(1) == "submit"
    for _ in range(2):  # pressed twice: still one submission
        assert client.post("/q/review", data={**kept, "action": "submit"}).status_code == 302
    with app.app_context():
        baseline = db.session.scalar(
            db.select(Assessment).where(
                Assessment.patient_id == enrolled.patient_id, Assessment.timepoint == "baseline"
            )
        )
        assert baseline is not None
        assert baseline.status == "completed"
        assert len(stored_answers(app)) == 51


def test_the_link_opened_during_the_outage_offers_to_try_again(app: Flask, outage: Outage) -> None:
    enrolled = factories.enrol(app)
    browser = app.test_client()
    with database_down(outage):
        page = browser.get(enrolled.path)
        assert page.status_code == 503
        friendly(page.text)
        assert f'href="{enrolled.path}"' in page.text  # "try again" = open the link again
    assert browser.get(enrolled.path).status_code == 200


def _eligible_form(code: str) -> dict[str, str]:
    today = utcnow().astimezone(ZoneInfo("Europe/Rome")).date()
    return {
        "study_code": code,
        "arm": "tae",
        "randomized_on": (today - timedelta(days=1)).isoformat(),
        "language": "it",
        "timezone": "Europe/Rome",
        "email": "paziente@example.org",
        "preferred_channel": "email",
        **{
            f"eligibility_{c.code}": "yes" if c.kind == "inclusion" else "no"
            for c in CHECKLIST.criteria
        },
    }


def test_staff_see_a_friendly_page_and_enrol_once_afterwards(
    app: Flask, client: FlaskClient, outage: Outage
) -> None:
    factories.staff_user(app, NURSE, language="en")
    assert factories.sign_in(client, NURSE).status_code == 302
    form_page = client.get("/staff/enrol")
    data = {"csrf_token": factories.csrf_token(form_page.text), **_eligible_form("MI01-0099")}
    with database_down(outage):
        worklist = client.get("/staff/worklist")
        assert worklist.status_code == 503
        friendly(worklist.text)
        assert 'href="/staff/worklist"' in worklist.text
        enrol = client.post("/staff/enrol", data=data)
        assert enrol.status_code == 503
        friendly(enrol.text)
        assert "non è stato salvato nulla" in enrol.text  # Italian: the default locale
        assert 'name="study_code"' not in enrol.text  # staff input is not echoed back
    assert client.get("/staff/worklist").status_code == 200  # still signed in
    assert client.post("/staff/enrol", data=data).status_code == 302
    with app.app_context():
        codes = db.session.scalars(db.select(Patient.study_code)).all()
    assert codes == ["MI01-0099"]


def test_the_api_answers_json_during_the_outage(app: Flask, outage: Outage) -> None:
    factories.staff_user(app, "analyst@example.org", "analyst", None)
    with app.app_context():
        user = db.session.scalar(db.select(StaffUser))
        assert user is not None
        _row, raw = api_tokens.create_token(user, "script", utcnow())
        db.session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {raw}"}
    with database_down(outage):
        refused = client.get("/api/v1/exports", headers=headers)
    assert refused.status_code == 503
    assert refused.json is not None
    assert refused.json["error"] == "unavailable"
    assert refused.headers["Retry-After"] == "30"
    assert client.get("/api/v1/exports", headers=headers).status_code == 200


def test_a_dispatcher_pass_during_the_outage_loses_no_message(app: Flask, outage: Outage) -> None:
    today = utcnow().astimezone(ZoneInfo("Europe/Rome"))
    now = today.replace(hour=11, minute=0, second=0, microsecond=0)  # outside quiet hours
    factories.enrol(app, now=now)
    with database_down(outage), app.app_context(), pytest.raises(OperationalError):
        dispatch_due_messages(now)
    with app.app_context():
        summary = dispatch_due_messages(now + timedelta(minutes=1))
        assert summary.sent == 1
        assert len(senders().email.sent) == 1  # type: ignore[attr-defined]


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    """The test app over real HTTP, for the browser."""
    with serving(app) as url:
        yield url


@pytest.mark.browser
def test_the_page_script_keeps_a_tap_and_sends_it_when_the_database_returns(
    app: Flask, outage: Outage, served: str
) -> None:
    from playwright.sync_api import sync_playwright

    enrolled = factories.enrol(app)

    def drive() -> None:  # off the main thread: another sync Playwright may run there
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_context(locale="it-IT").new_page()
            page.goto(served + enrolled.path)
            page.click("button[value=start]")
            page.wait_for_url("**/q/page/1")
            with database_down(outage):
                page.check("input[name='qlq_c30-2'][value='3']")
                page.wait_for_selector("#save-state.warn")  # "no connection: kept on this phone"
                queue = page.evaluate("JSON.parse(localStorage.getItem('pro-app-answer-queue'))")
                assert queue["qlq_c30-2"]["value"] == "3"
                # The script keeps trying meanwhile, and keeps the answer.
                time.sleep(OUTAGE_SECONDS)
                assert page.evaluate("localStorage.getItem('pro-app-answer-queue')") != "{}"
            started = time.perf_counter()
            # The script tries again every 4 s until the answer is taken.
            page.wait_for_selector("#save-state.ok", timeout=20_000)
            print(f"queued answer saved {time.perf_counter() - started:.1f} s after the outage")
            assert page.evaluate("localStorage.getItem('pro-app-answer-queue')") == "{}"
            browser.close()

    in_thread(drive)
    assert stored_answers(app) == {"qlq_c30-2": 3}
