"""JSON log lines: one per request (endpoint, never the path), message events, the CLI's lines."""

from __future__ import annotations

import io
import json
import logging
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from pro_app import create_app, health, logs
from pro_app.config import ConfigurationError
from pro_app.extensions import db
from pro_app.messaging import DeliveryError
from pro_app.models import Patient
from pro_app.services.dispatch import dispatch_due_messages
from pro_app.services.senders import senders
from tests import factories
from tests.conftest import make_config
from tests.factories import rome
from tests.web.test_cli import PRO_APP
from tests.web.test_scheduler_process import _env, _midday_zone

RANDOMIZED = rome(2026, 3, 2, 11, 0)
LogLines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def app_config(database_uri: str) -> dict[str, Any]:
    return make_config(database_uri, LOG_FORMAT="json")


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """What the process's stderr handler writes, for the duration of the test."""
    handler = logs.process_handler("json")
    buffer = io.StringIO()
    previous = handler.setStream(buffer)  # type: ignore[attr-defined]
    yield buffer
    handler.setStream(previous)  # type: ignore[attr-defined]


@pytest.fixture
def log_lines(app: Flask, captured: io.StringIO) -> LogLines:
    """Every line written so far, each parsed as JSON (a line that is not JSON fails the test)."""
    return lambda: [json.loads(line) for line in captured.getvalue().splitlines()]


def requests_in(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["event"] == "request"]


def test_every_request_writes_one_json_line_with_the_endpoint(
    app: Flask, log_lines: LogLines, captured: io.StringIO
) -> None:
    enrolled = factories.enrol(app)
    response = factories.open_link(app.test_client(), enrolled)
    assert "qlq_c30-1" in response
    lines = log_lines()
    for line in lines:
        assert {"time", "level", "logger", "event", "message"} <= set(line)
        assert line["time"].endswith("Z")
        datetime.fromisoformat(line["time"])
    welcome, started, page = requests_in(lines)[:3]
    assert welcome["method"] == "GET"
    assert welcome["endpoint"] == "patient.welcome"
    assert welcome["status"] == 200
    assert isinstance(welcome["duration_ms"], float)
    assert welcome["role"] is None
    assert welcome["logger"] == "pro_app.request"
    assert (started["method"], started["endpoint"], started["status"]) == (
        "POST",
        "patient.start",
        302,
    )
    assert page["endpoint"] == "patient.questionnaire"
    # The path would carry the token: neither appears anywhere.
    assert enrolled.token not in captured.getvalue()
    assert "/p/" not in captured.getvalue()


def test_the_request_id_is_returned_and_logged(app: Flask, log_lines: LogLines) -> None:
    client = app.test_client()
    answers = {
        name: client.get("/healthz", headers={"X-Request-ID": name} if name else {})
        for name in ("", "proxy-id-0001", "bad id", "short", "x" * 65, "semi;colon-id")
    }
    kept = answers["proxy-id-0001"].headers["X-Request-ID"]
    assert kept == "proxy-id-0001"
    for name in ("", "bad id", "short", "x" * 65, "semi;colon-id"):
        made = answers[name].headers["X-Request-ID"]
        assert len(made) == 16
        int(made, 16)
    logged = [line["request_id"] for line in requests_in(log_lines())]
    assert logged == [answer.headers["X-Request-ID"] for answer in answers.values()]
    assert len(set(logged)) == len(logged)


def test_staff_lines_carry_the_role_and_nothing_about_the_person(
    app: Flask, log_lines: LogLines, captured: io.StringIO
) -> None:
    factories.staff_user(app, "nurse@mi01.example.org", "nurse", "MI01")
    client = app.test_client()
    assert factories.sign_in(client, "nurse@mi01.example.org").status_code == 302
    assert client.get("/staff/worklist").status_code == 200
    lines = requests_in(log_lines())
    sign_in_page, signed_in, worklist = lines[-3:]
    assert sign_in_page["role"] is None
    assert signed_in["role"] == "nurse"  # the sign-in committed: the role is read again
    assert (worklist["endpoint"], worklist["role"]) == ("staff.worklist", "nurse")
    text = captured.getvalue()
    assert "nurse@mi01" not in text
    assert "Nurse" not in text  # the account's name


def test_a_404_and_a_500_are_logged_with_their_status(
    app: Flask, log_lines: LogLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = app.test_client()
    assert client.get("/no/such/page").status_code == 404

    def broken() -> None:
        raise RuntimeError("boom at mario.rossi@example.org")

    monkeypatch.setattr(health, "last_dispatcher_run", broken)
    assert client.get("/healthz").status_code == 500  # the error page
    missing, failed = requests_in(log_lines())[-2:]
    assert (missing["endpoint"], missing["status"]) == (None, 404)
    assert (failed["endpoint"], failed["status"]) == ("health.healthz", 500)
    # The error itself is logged by type and place, never by its message.
    [error] = [line for line in log_lines() if line["level"] == "ERROR"]
    assert "RuntimeError" in error["message"]
    assert "mario.rossi" not in json.dumps(log_lines())


def test_an_exception_that_escapes_every_handler_is_logged_as_500(
    app: Flask, log_lines: LogLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Testing propagates exceptions past after_request: teardown writes the line."""
    from pro_app import errors

    def broken(*_args: object) -> None:
        raise RuntimeError("the error page failed too")

    monkeypatch.setattr(health, "last_dispatcher_run", broken)
    monkeypatch.setattr(errors, "render_error", broken)
    with pytest.raises(RuntimeError):
        app.test_client().get("/healthz")
    [line] = requests_in(log_lines())
    assert (line["endpoint"], line["status"]) == ("health.healthz", 500)
    assert isinstance(line["duration_ms"], float)


def test_static_files_are_logged_too(app: Flask, log_lines: LogLines) -> None:
    response = app.test_client().get("/static/style.css")
    assert response.status_code == 200
    response.close()
    [line] = requests_in(log_lines())
    assert (line["endpoint"], line["status"]) == ("static", 200)


def test_many_apps_share_one_handler_and_write_each_line_once(
    database_uri: str, captured: io.StringIO
) -> None:
    made = [create_app(make_config(database_uri, LOG_FORMAT="json")) for _ in range(3)]
    package = logging.getLogger("pro_app")
    handlers = [*package.handlers, *logging.getLogger().handlers]
    ours = [handler for handler in handlers if handler.name == logs.HANDLER_NAME]
    assert len(ours) == 1
    answer = made[-1].test_client().get("/")
    answer.close()
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    assert [line["request_id"] for line in lines] == [answer.headers["X-Request-ID"]]
    for app in made:
        with app.app_context():
            db.engine.dispose()


def test_text_format_for_development(database_uri: str, captured: io.StringIO) -> None:
    app = create_app(make_config(database_uri, LOG_FORMAT="text"))
    try:
        app.test_client().get("/").close()
        [line] = captured.getvalue().splitlines()
        assert " INFO pro_app.request request method=GET endpoint=public.index status=200" in line
        assert "request_id=" in line
    finally:
        logs.process_handler("json")
        with app.app_context():
            db.engine.dispose()


def test_an_unknown_log_format_stops_start_up(database_uri: str) -> None:
    with pytest.raises(ConfigurationError, match="LOG_FORMAT must be json or text"):
        create_app(make_config(database_uri, LOG_FORMAT="xml"))


def test_exceptions_are_logged_by_type_and_place_only() -> None:
    record = logging.LogRecord("pro_app.x", logging.ERROR, __file__, 1, "failed", (), None)
    try:
        raise ValueError("could not reach mario.rossi@example.org")
    except ValueError as error:
        record.exc_info = (ValueError, error, error.__traceback__)
    for formatter in (logs.JsonFormatter(), logs.TextFormatter()):
        text = formatter.format(record)
        assert "builtins.ValueError (message not logged)" in text
        assert "test_structured_logs.py" in text
        assert "mario.rossi" not in text
        assert "Traceback" not in text
    entry = json.loads(logs.JsonFormatter().format(record))
    assert entry["event"] == "log"
    assert entry["level"] == "ERROR"


def test_fields_never_overwrite_the_fixed_keys() -> None:
    record = logging.LogRecord("pro_app.x", logging.INFO, __file__, 1, "hello", (), None)
    record.__dict__.update(logs.event("thing.done", level="mine", count=3))
    entry = json.loads(logs.JsonFormatter().format(record))
    assert entry["level"] == "INFO"
    assert entry["field_level"] == "mine"
    assert (entry["event"], entry["count"]) == ("thing.done", 3)


def _dispatch(app: Flask, at: datetime) -> None:
    with app.app_context():
        dispatch_due_messages(at.astimezone(UTC))


def _events(lines: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["event"] == name]


def test_the_dispatcher_logs_message_events_with_codes_not_texts(
    app: Flask, log_lines: LogLines, captured: io.StringIO
) -> None:
    factories.enrol(app, "MI01-0001", now=RANDOMIZED)
    _dispatch(app, RANDOMIZED)
    [sent] = _events(log_lines(), "message.sent")
    assert sent["kind"] == "invitation"
    assert sent["channel"] == "email"
    assert sent["attempt"] == 1
    assert isinstance(sent["message_id"], int)
    [summary] = _events(log_lines(), "dispatch.pass")
    assert (summary["claimed"], summary["sent"], summary["failed"]) == (1, 1, 0)

    factories.enrol(app, "MI01-0002", now=RANDOMIZED)
    with app.app_context():
        senders().email.fail_with = DeliveryError("SMTP connection refused", permanent=False)  # type: ignore[attr-defined]
    _dispatch(app, RANDOMIZED + timedelta(minutes=1))
    [retry] = _events(log_lines(), "message.retry")
    assert (retry["reason"], retry["attempt"], retry["level"]) == (
        "connection_refused",
        1,
        "WARNING",
    )
    assert retry["retry_at"] == (RANDOMIZED + timedelta(minutes=2)).astimezone(UTC).isoformat()

    # A provider that quotes the address in its reason: only the code reaches the log.
    with app.app_context():
        senders().email.fail_with = DeliveryError(  # type: ignore[attr-defined]
            "SMTP 550 5.1.1 <mi01-0002@example.org> recipient refused", permanent=True
        )
    _dispatch(app, RANDOMIZED + timedelta(minutes=3))
    [failed] = _events(log_lines(), "message.failed")
    assert (failed["reason"], failed["attempt"], failed["kind"]) == ("smtp_550", 2, "invitation")
    assert failed["message_id"] == retry["message_id"]
    assert "example.org" not in captured.getvalue()
    assert [line["failed"] for line in _events(log_lines(), "dispatch.pass")] == [0, 0, 1]


def test_a_patient_without_contact_fails_with_the_no_contact_code(
    app: Flask, log_lines: LogLines
) -> None:
    enrolled = factories.enrol(app, now=RANDOMIZED)
    with app.app_context():  # the address was removed after the invitation was planned
        patient = db.session.get(Patient, enrolled.patient_id)
        assert patient is not None
        assert patient.contact is not None
        patient.contact.email = None
        db.session.commit()
    _dispatch(app, RANDOMIZED)
    [failed] = _events(log_lines(), "message.failed")
    assert failed["reason"] == "no_contact"


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("SMTP 550 5.1.1 recipient refused", "smtp_550"),
        ("SMTP 451 4.3.0 message refused (temporary)", "smtp_451"),
        ("SMTP timeout", "timeout"),
        ("SMS gateway timeout", "timeout"),
        ("SMS gateway refused the number (HTTP 400)", "http_400"),
        ("SMS number is not in E.164 format", "invalid_number"),
        ("e-mail not built: invalid header value", "invalid_message"),
        ("no sms contact on file", "no_contact"),
        ("SMTP TLS certificate not trusted", "tls"),
        ("SMS gateway unreachable (URLError)", "connection"),
        ("could not deliver to 347 765 4321", "other"),
    ],
)
def test_failure_categories(reason: str, code: str) -> None:
    assert logs.failure_category(reason) == code


@pytest.mark.skipif(PRO_APP is None, reason="console script not installed")
def test_the_scheduler_process_writes_json_lines(tmp_path: Path, database_uri: str) -> None:
    if database_uri.startswith("postgresql"):
        pytest.skip("this test owns its database (a SQLite file)")
    env = {
        **_env(tmp_path, f"sqlite:///{tmp_path / 'scheduler.sqlite3'}"),
        "PRO_LOG_FORMAT": "json",
    }
    for command in (["init-db"], ["site", "add", "MI01", "Milano"]):
        subprocess.run([PRO_APP, *command], env=env, check=True, capture_output=True)
    zone, today = _midday_zone()
    subprocess.run(
        [
            *(PRO_APP, "enroll", "--study-code", "MI01-0001", "--site", "MI01", "--arm", "tae"),
            *("--randomized-on", today, "--timezone", zone, "--email", "mario.rossi@example.org"),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    process = subprocess.Popen(
        [PRO_APP, "scheduler"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not list((tmp_path / "outbox").glob("*.eml")):
        time.sleep(0.2)
    time.sleep(1.5)  # another pass
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=15)
    assert "Scheduler stopped." in stdout
    lines = [json.loads(line) for line in stderr.splitlines()]
    assert {"message.sent", "dispatch.pass"} <= {line["event"] for line in lines}
    loggers = {line["logger"] for line in lines}
    assert any(name.startswith("apscheduler") for name in loggers)  # the root's handler
    [sent] = _events(lines, "message.sent")
    assert sent["channel"] == "email"
    assert "mario.rossi" not in stderr
    # Each record once, though the app's handler was on the "pro_app" logger first.
    assert len(set(stderr.splitlines())) == len(stderr.splitlines())
