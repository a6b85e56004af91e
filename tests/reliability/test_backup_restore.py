"""Backup and restore drill: a backup taken while a patient keeps answering restores exactly."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import create_engine, func, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError

from pro_app import create_app
from pro_app.backup import postgres
from pro_app.backup.manifest import build_manifest, digest_rows, one_snapshot, read_manifest
from pro_app.extensions import db
from pro_app.models import Answer, Assessment, AuditEvent, PatientLink, StaffUser
from pro_app.models.types import utcnow
from pro_app.services import audit
from pro_app.services.answering import store_answers
from pro_app.services.corrections import correct_answer
from pro_app.services.dispatch import dispatch_due_messages
from tests import factories
from tests.conftest import make_config
from tests.factories import Enrolled, csrf_token, form_key, hidden_fields

WRITER_ITEMS = 30  # the writer fills qlq_c30-1..30, then keeps changing them
RADIO = re.compile(r'type="radio" name="([a-z0-9_]+-\d+)"')


@dataclass(frozen=True)
class Trial:
    submitted: Enrolled  # answered every page, submitted, then corrected by an investigator
    answering: Enrolled  # the patient the concurrent writer keeps saving answers for
    answering_assessment: int


class Writer(threading.Thread):
    """A patient saving one answer per transaction through the service, until told to stop."""

    def __init__(self, app: Flask, assessment_id: int, link_id: int) -> None:
        super().__init__(daemon=True)
        self.app, self.assessment_id, self.link_id = app, assessment_id, link_id
        self.commits = 0
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            with self.app.test_request_context():
                while not self.stop.is_set():
                    assessment = db.session.get(Assessment, self.assessment_id)
                    item = self.commits % WRITER_ITEMS + 1
                    value = (self.commits // WRITER_ITEMS) % 4 + 1
                    store_answers(
                        assessment,  # type: ignore[arg-type]
                        {f"qlq_c30-{item}": value},
                        now=utcnow(),
                        actor=audit.Actor.patient_link(self.link_id),
                    )
                    db.session.commit()
                    self.commits += 1
        except BaseException as error:  # reported by the test, not lost in the thread
            self.error = error
        finally:
            with self.app.app_context():
                db.session.remove()

    def wait_for(self, commits: int) -> None:
        """Block until the writer has made this many commits in all."""
        for _ in range(2000):
            if self.commits >= commits or self.error is not None:
                return
            self.stop.wait(0.01)


def _answer_and_submit(client: FlaskClient, enrolled: Enrolled) -> None:
    html, number = factories.open_link(client, enrolled), 1
    while True:
        answers = dict.fromkeys(set(RADIO.findall(html)), "2")
        data = {**hidden_fields(html), "action": "next", **answers}
        moved = client.post(f"/q/page/{number}", data=data)
        assert moved.status_code == 302, moved.text
        html = client.get(moved.headers["Location"]).text
        if moved.headers["Location"] == "/q/review":
            break
        number += 1
    submitted = client.post(
        "/q/review",
        data={"csrf_token": csrf_token(html), "form_key": form_key(html), "action": "submit"},
    )
    assert submitted.headers["Location"] == "/q"


def _build_trial(app: Flask, client: FlaskClient) -> Trial:
    """Data made by the real services: answers, a submission, a correction, a dispatcher pass."""
    submitted = factories.enrol(app, "MI01-0001")
    _answer_and_submit(client, submitted)
    investigator = factories.staff_user(app, "investigator@mi01.example.org", "investigator")
    answering = factories.enrol(app, "MI01-0002")
    with app.test_request_context():
        baseline = db.session.scalar(
            db.select(Assessment).where(
                Assessment.patient_id == submitted.patient_id, Assessment.timepoint == "baseline"
            )
        )
        correct_answer(
            baseline,  # type: ignore[arg-type]
            "qlq_c30",
            1,
            4,
            "Transcription error",
            staff_user=db.session.get(StaffUser, investigator),  # type: ignore[arg-type]
            now=utcnow(),
        )
        db.session.commit()
        # Invitations go out at 10:00 Rome on the day the window opens: pass after that.
        today = utcnow().astimezone(factories.ROME)
        at = max(utcnow(), factories.rome(today.year, today.month, today.day, 10, 30))
        assert dispatch_due_messages(at).claimed >= 1
        answering_assessment = db.session.scalar(
            db.select(Assessment.id).where(
                Assessment.patient_id == answering.patient_id, Assessment.timepoint == "baseline"
            )
        )
    return Trial(submitted, answering, answering_assessment)  # type: ignore[arg-type]


def _link_id(app: Flask, patient_id: int) -> int:
    with app.app_context():
        return db.session.scalar(  # type: ignore[return-value]
            db.select(PatientLink.id).where(PatientLink.patient_id == patient_id)
        )


def _replayed_answers_match(app: Flask, assessment_id: int) -> tuple[int, int]:
    """Replay the writer's audit rows; they must give exactly the stored answers (one instant)."""
    with app.app_context():
        events = db.session.scalars(
            db.select(AuditEvent)
            .where(
                AuditEvent.action == "answers.save",
                AuditEvent.entity_id == str(assessment_id),
            )
            .order_by(AuditEvent.id)
        ).all()
        expected: dict[str, int | None] = {}
        for event in events:
            expected |= event.after or {}
        stored = {
            f"{answer.instrument}-{answer.item}": answer.value
            for answer in db.session.scalars(
                db.select(Answer).where(Answer.assessment_id == assessment_id)
            )
        }
        assert stored == expected, "answers and audit trail come from different instants"
        return len(events), len(stored)


def runner_for(application: Flask) -> FlaskCliRunner:
    return application.test_cli_runner()


def _app_on(database_uri: str, tmp_path: Path) -> Flask:
    application = create_app(make_config(database_uri))
    application.instance_path = str(tmp_path / "restored-instance")
    return application


@pytest.fixture
def sqlite_app(app: Flask) -> Flask:
    if db_dialect(app) != "sqlite":
        pytest.skip("the SQLite backup API drill runs in the SQLite suite")
    return app


def db_dialect(app: Flask) -> str:
    with app.app_context():
        return db.engine.dialect.name


@pytest.fixture
def restored_app(tmp_path: Path) -> Iterator[Flask]:
    application = _app_on(f"sqlite:///{tmp_path / 'restored' / 'pro.sqlite3'}", tmp_path)
    yield application
    with application.app_context():
        db.engine.dispose()


def test_backup_while_a_patient_answers_restores_counts_checksums_triggers_and_links(
    sqlite_app: Flask,
    client: FlaskClient,
    runner: FlaskCliRunner,
    restored_app: Flask,
    tmp_path: Path,
) -> None:
    trial = _build_trial(sqlite_app, client)
    writer = Writer(
        sqlite_app, trial.answering_assessment, _link_id(sqlite_app, trial.answering.patient_id)
    )
    writer.start()
    try:
        writer.wait_for(5)
        before = writer.commits
        backup = tmp_path / "backups" / "pro.sqlite3"
        backup.parent.mkdir()
        result = runner.invoke(args=["backup", "--out", str(backup)])
        during = writer.commits - before
        writer.wait_for(writer.commits + 5)  # the app goes on writing after the backup too
    finally:
        writer.stop.set()
        writer.join(timeout=30)
    assert writer.error is None, repr(writer.error)
    assert result.exit_code == 0, result.output
    assert during > 0, "the writer made no commit while the backup ran"
    assert f"Backup: {backup}" in result.output
    assert "Size:" in result.output
    manifest = read_manifest(backup.with_name("pro.sqlite3.manifest.json"))
    assert manifest["backup"]["bytes"] == backup.stat().st_size

    restored = runner_for(restored_app).invoke(args=["restore", "--from", str(backup)])
    assert restored.exit_code == 0, restored.output
    assert "Verified: 7 tables" in restored.output

    # Counts and checksums of the restored file, computed afresh, are those of the manifest.
    with restored_app.app_context(), one_snapshot(db.engine) as connection:
        fresh = build_manifest(connection, utcnow())["tables"]
        counts = {
            "answer": connection.scalar(db.select(func.count()).select_from(Answer)),
            "audit_event": connection.scalar(db.select(func.count()).select_from(AuditEvent)),
        }
    for table in ("answer", "score", "audit_event", "answer_correction", "message"):
        assert fresh[table] == manifest["tables"][table], table
    assert counts["answer"] == manifest["tables"]["answer"]["rows"]
    assert counts["audit_event"] == manifest["tables"]["audit_event"]["rows"]
    assert manifest["tables"]["answer_correction"]["rows"] == 1
    assert manifest["tables"]["score"]["rows"] > 0
    assert manifest["tables"]["message"]["rows"] > 0

    # The copy is one instant: the writer's answers are exactly what its audit rows say, and
    # the live database has moved on since.
    events, answers = _replayed_answers_match(restored_app, trial.answering_assessment)
    assert answers == min(events, WRITER_ITEMS)
    assert events < writer.commits

    # The audit trail's triggers came back with the data.
    with restored_app.app_context(), pytest.raises(DatabaseError, match="append-only"):
        db.session.execute(text("UPDATE audit_event SET action = 'x'"))
    with restored_app.app_context():
        db.session.rollback()

    # The app starts on the restored file, and the patient's link opens the questionnaire.
    page = factories.open_link(restored_app.test_client(), trial.answering)
    assert RADIO.search(page), "the link does not open a questionnaire page"


def test_verify_lists_differences_and_restore_refuses_to_overwrite_or_trust_a_damaged_file(
    sqlite_app: Flask,
    client: FlaskClient,
    runner: FlaskCliRunner,
    restored_app: Flask,
    tmp_path: Path,
) -> None:
    _build_trial(sqlite_app, client)
    backup = tmp_path / "pro.sqlite3"
    assert runner.invoke(args=["backup", "--out", str(backup)]).exit_code == 0
    manifest_file = tmp_path / "pro.sqlite3.manifest.json"
    assert runner.invoke(args=["backup", "verify", str(manifest_file)]).exit_code == 0

    again = runner.invoke(args=["backup", "--out", str(backup)])
    assert again.exit_code == 1
    assert "already exists" in again.output
    assert runner.invoke(args=["backup", "--out", str(backup), "--force"]).exit_code == 0

    # Same number of rows, one value changed: only the checksum can tell.
    with sqlite_app.app_context():
        db.session.execute(text("UPDATE answer SET value = 3 WHERE value = 2 AND item = 5"))
        db.session.commit()
    changed = runner.invoke(args=["backup", "verify", str(manifest_file)])
    assert changed.exit_code == 1
    assert "- answer: checksum differs" in changed.output
    assert "rows in manifest" not in changed.output  # every count still matches

    # The source holds data: restoring onto it needs --force.
    refused = runner.invoke(args=["restore", "--from", str(backup)])
    assert refused.exit_code == 1
    assert "already holds data" in refused.output

    # A damaged backup is refused before anything is written.
    damaged = tmp_path / "damaged.sqlite3"
    shutil.copy(backup, damaged)
    shutil.copy(manifest_file, tmp_path / "damaged.sqlite3.manifest.json")
    with damaged.open("r+b") as stream:
        stream.seek(damaged.stat().st_size // 2)
        stream.write(b"\xff" * 16)
    target = Path(make_url(restored_app.config["SQLALCHEMY_DATABASE_URI"]).database or "")
    broken = runner_for(restored_app).invoke(args=["restore", "--from", str(damaged)])
    assert broken.exit_code == 1
    assert "does not match its manifest" in broken.output
    assert not target.exists()


def test_checksums_ignore_row_order_and_storage_time_zone_but_see_every_value() -> None:
    rome = timezone(timedelta(hours=1))
    first = (1, "qlq_c30", 5, 2, datetime(2026, 11, 24, 11, 0, tzinfo=rome), {"b": 1.0, "a": 2})
    second = (1, "qlq_c30", 6, None, datetime(2026, 11, 24, 10, 0, tzinfo=UTC), [0.1 + 0.2])
    same_instant = (*first[:4], datetime(2026, 11, 24, 10, 0, tzinfo=UTC), {"a": 2, "b": 1.0})
    assert digest_rows([first, second]) == digest_rows([second, same_instant])
    assert digest_rows([first, second]).rows == 2
    for changed in (
        (1, "qlq_c30", 5, 3, *first[4:]),  # another value
        (*first[:5], {"b": 1, "a": 2}),  # an integer is not the float it equals
        (*first[:3], None, *first[4:]),  # a skip is not an answer
    ):
        assert digest_rows([changed, second]) != digest_rows([first, second])
    assert digest_rows([first]) != digest_rows([first, first])  # a duplicated row counts


@pytest.mark.postgres
def test_pg_dump_on_the_manifest_snapshot_restores_into_a_scratch_database(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    if db_dialect(app) != "postgresql":
        pytest.skip("the pg_dump round trip runs when PRO_TEST_DATABASE_URI points at PostgreSQL")
    if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        pytest.skip("pg_dump and pg_restore are not installed (Debian: postgresql-client)")
    trial = _build_trial(app, client)
    writer = Writer(app, trial.answering_assessment, _link_id(app, trial.answering.patient_id))
    writer.start()
    dump = tmp_path / "pro.dump"
    try:
        writer.wait_for(5)
        result = runner.invoke(args=["backup", "--out", str(dump), "--pg-dump"])
        writer.wait_for(writer.commits + 5)
    finally:
        writer.stop.set()
        writer.join(timeout=30)
    assert writer.error is None, repr(writer.error)
    assert result.exit_code == 0, result.output
    assert f"Backup: {dump}" in result.output

    with _scratch_database(app.config["SQLALCHEMY_DATABASE_URI"]) as scratch_uri:
        command = postgres.restore_command(make_url(scratch_uri), dump)
        subprocess.run(command, check=True, capture_output=True, timeout=120)
        restored_app = _app_on(scratch_uri, tmp_path)
        try:
            verified = runner_for(restored_app).invoke(
                args=["backup", "verify", str(tmp_path / "pro.dump.manifest.json")]
            )
            assert verified.exit_code == 0, verified.output
            events, answers = _replayed_answers_match(restored_app, trial.answering_assessment)
            assert answers == min(events, WRITER_ITEMS)
            assert events < writer.commits
            with restored_app.app_context(), pytest.raises(DatabaseError, match="append-only"):
                db.session.execute(text("UPDATE audit_event SET action = 'x'"))
            page = factories.open_link(restored_app.test_client(), trial.answering)
            assert RADIO.search(page), "the link does not open a questionnaire page"
        finally:
            with restored_app.app_context():
                db.session.remove()
                db.engine.dispose()


@contextlib.contextmanager
def _scratch_database(suite_uri: str) -> Iterator[str]:
    """An empty database beside the suite's, dropped afterwards whatever happens."""
    url = make_url(suite_uri)
    name = f"scratch_restore_{os.getpid()}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
