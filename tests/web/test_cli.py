"""The `pro-app` commands, through Click's runner and once through the real console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskCliRunner
from hypothesis import HealthCheck, given, settings
from sqlalchemy import func

from pro_app import cli
from pro_app.extensions import db
from pro_app.models import (
    AnswerCorrection,
    Assessment,
    Message,
    MessageStatus,
    Patient,
    PatientLink,
    Site,
    StaffUser,
)
from pro_app.services.links import hash_token
from tests.conftest import TEST_SECRET_KEY
from tests.unit.reference_scoring import REFERENCES
from tests.unit.test_scoring_properties import INSTRUMENTS, response_sets

PRO_APP = shutil.which("pro-app", path=str(Path(sys.executable).parent))


def test_site_add_and_duplicate(runner: FlaskCliRunner, app: Flask) -> None:
    result = runner.invoke(args=["site", "add", "mi01", "Milano"])
    assert result.exit_code == 0, result.output
    again = runner.invoke(args=["site", "add", "MI01", "Milano bis"])
    assert again.exit_code == 1
    assert "Site MI01 already exists." in again.output
    bad = runner.invoke(args=["site", "add", "bad code!", "X"])
    assert bad.exit_code == 1
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Site)) == 1


@pytest.mark.real_password_hashes
def test_staff_add_hashes_the_password(
    runner: FlaskCliRunner, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner.invoke(args=["site", "add", "MI01", "Milano"])
    monkeypatch.setenv("PRO_NEW_PASSWORD", "a long enough password")
    result = runner.invoke(
        args=["staff", "add", "Nurse@Example.org", "--role", "nurse", "--site", "MI01"]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(db.select(StaffUser))
        assert user is not None
        assert user.email == "nurse@example.org"
        assert user.password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=2$")
        assert "a long enough password" not in user.password_hash


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (["x@example.org", "--role", "nurse"], "long enough pw", "must belong to a site"),
        (["not-an-email", "--role", "analyst"], "long enough pw", "not a valid e-mail"),
        (["x@example.org", "--role", "analyst"], "short", "8-128 characters"),
        (
            ["x@example.org", "--role", "nurse", "--site", "NOPE"],
            "long enough pw",
            "does not exist",
        ),
    ],
)
def test_staff_add_refuses_bad_input(
    runner: FlaskCliRunner,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    password: str,
    message: str,
) -> None:
    monkeypatch.setenv("PRO_NEW_PASSWORD", password)
    result = runner.invoke(args=["staff", "add", *args])
    assert result.exit_code == 1
    assert message in result.output


def test_enroll_prints_the_link_last(runner: FlaskCliRunner, app: Flask) -> None:
    runner.invoke(args=["site", "add", "MI01", "Milano"])
    result = runner.invoke(
        args=[
            "enroll",
            "--study-code",
            "mi01-0001",
            "--site",
            "MI01",
            "--arm",
            "tae",
            "--randomized-on",
            "2026-11-20",
            "--email",
            "Paziente@Example.org",
        ]
    )
    assert result.exit_code == 0, result.output
    url = result.output.strip().splitlines()[-1]
    assert url.startswith("https://pro.example.test/p/")
    token = url.rsplit("/", 1)[1]
    with app.app_context():
        patient = db.session.scalar(db.select(Patient))
        assert patient is not None
        assert patient.study_code == "MI01-0001"
        link = db.session.scalar(db.select(PatientLink))
        assert link is not None
        assert link.token_hash == hash_token(token)
        timepoints = db.session.scalars(db.select(Assessment.timepoint)).all()
        assert sorted(timepoints) == ["baseline", "month3", "month6"]


def test_enroll_refuses_bad_input_and_changes_nothing(runner: FlaskCliRunner, app: Flask) -> None:
    runner.invoke(args=["site", "add", "MI01", "Milano"])
    result = runner.invoke(
        args=[
            "enroll",
            "--study-code",
            "MI01-0002",
            "--site",
            "MI01",
            "--arm",
            "nonsense",
            "--randomized-on",
            "2026-11-20",
        ]
    )
    assert result.exit_code == 1
    assert "Choose one of the trial arms." in result.output
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Patient)) == 0


def test_score_prints_json(runner: FlaskCliRunner, tmp_path: Path) -> None:
    answers = {str(item): 1 for item in range(1, 29)} | {"29": 1, "30": 1}
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(answers))
    result = runner.invoke(args=["score", "qlq_c30", str(path)])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)
    assert scores["PF2"] == 100
    assert scores["FA"] == 0
    assert scores["QL2"] == 0
    assert scores["SUMSC"] == 100


def test_score_reads_stdin_and_keeps_missing_as_null(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["score", "qlq_c30", "-"], input='{"1": 2, "2": 2, "3": 3}')
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)
    assert scores["PF2"] == pytest.approx(55.5555555556, abs=1e-9)
    assert scores["DY"] is None
    assert scores["SUMSC"] is None


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"99": 1}', "99"),
        ('{"1": 9}', "9"),
        ("[1, 2]", "object"),
    ],
)
def test_score_rejects_bad_input_in_one_line(
    runner: FlaskCliRunner, payload: str, message: str
) -> None:
    result = runner.invoke(args=["score", "qlq_c30", "-"], input=payload)
    assert result.exit_code == 1
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1
    assert message in error_lines[0]


def test_score_unknown_instrument(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["score", "qlq_xx", "-"], input="{}")
    assert result.exit_code == 1
    assert "unknown instrument" in result.output


def test_check_passes_on_the_shipped_files(monkeypatch: pytest.MonkeyPatch) -> None:
    _safe_production_env(monkeypatch)
    result = CliRunner().invoke(cli.check)
    assert result.exit_code == 0, result.output
    assert "All checks passed." in result.output


def test_check_fails_on_production_config_without_secret_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _safe_production_env(monkeypatch)
    monkeypatch.delenv("PRO_SECRET_KEY")
    result = CliRunner().invoke(cli.check)
    assert result.exit_code == 1
    assert "configuration: PRO_SECRET_KEY must be set" in result.output


def test_check_fails_on_a_broken_instrument_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pro_app.config import PROJECT_ROOT

    questionnaires = tmp_path / "questionnaires"
    shutil.copytree(PROJECT_ROOT / "questionnaires", questionnaires)
    broken = questionnaires / "qlq_c30.yaml"
    broken.write_text(broken.read_text().replace("item_range: 6", "item_range: 5", 1))
    _safe_production_env(monkeypatch)
    monkeypatch.setenv("PRO_QUESTIONNAIRE_DIR", str(questionnaires))
    result = CliRunner().invoke(cli.check)
    assert result.exit_code == 1
    assert "qlq_c30.yaml: scale QL2" in result.output


def test_check_fails_on_a_missing_italian_translation(monkeypatch: pytest.MonkeyPatch) -> None:
    from pro_app import catalogues

    real_read = catalogues._read

    def read_without_one_translation(path: Path):  # type: ignore[no-untyped-def]
        catalogue = real_read(path)
        if path.suffix == ".po":
            catalogue.get("Page not found").string = ""
        return catalogue

    monkeypatch.setattr(catalogues, "_read", read_without_one_translation)
    _safe_production_env(monkeypatch)
    result = CliRunner().invoke(cli.check)
    assert result.exit_code == 1
    assert "translations: it: no translation: 'Page not found'" in result.output


def test_init_db_and_demo(runner: FlaskCliRunner, app: Flask) -> None:
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "Demo data loaded." in result.output
    assert "infermiera@demo.invalid" in result.output
    assert result.output.count("https://pro.example.test/p/") >= 8
    again = runner.invoke(args=["demo"])
    assert "already loaded" in again.output
    with app.app_context():
        statuses = set(db.session.scalars(db.select(Patient.status)))
        assert statuses == {"active", "withdrawn", "deceased", "completed"}
        assessment_states = set(db.session.scalars(db.select(Assessment.status)))
        assert {"open", "in_progress", "completed", "missed", "scheduled", "not_done"} <= (
            assessment_states
        )
        # Enough follow-up for the analyst side: every mode, a correction, both arms at 6 months.
        modes = set(
            db.session.scalars(db.select(Assessment.mode).where(Assessment.mode.is_not(None)))
        )
        assert modes == {"web", "paper"}
        assert db.session.scalar(db.select(func.count(AnswerCorrection.id))) == 1
        month6 = db.session.scalars(
            db.select(Patient.arm)
            .join(Assessment, Assessment.patient_id == Patient.id)
            .where(Assessment.timepoint == "month6", Assessment.status == "completed")
        ).all()
        assert month6.count("tae") >= 10
        assert month6.count("control") >= 10
        # One mailbox refuses: the dispatcher's failure path leaves a failed message to show.
        failed = db.session.execute(
            db.select(Patient.study_code, Message.kind, Message.last_error)
            .join(Message, Message.patient_id == Patient.id)
            .where(Message.status == MessageStatus.FAILED)
        ).all()
        assert failed == [("DEMO-013", "invitation", "SMTP 550 5.1.1 mailbox unavailable")]
    assert "/analyst/" in result.output
    assert "/staff/admin/metrics" in result.output


@pytest.mark.skipif(PRO_APP is None, reason="console script not installed")
def test_console_script_end_to_end(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PRO_ENV": "development",
        "PRO_SECRET_KEY": TEST_SECRET_KEY,
        "PRO_SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
    }
    subprocess.run([PRO_APP, "init-db"], env=env, check=True, capture_output=True)
    scored = subprocess.run(
        [PRO_APP, "score", "qlq_c30", "-"],
        env=env,
        input='{"29": 7, "30": 7}',
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(scored.stdout)["QL2"] == 100
    unsafe = subprocess.run(
        [PRO_APP, "init-db"], env={**env, "PRO_ENV": "production"}, capture_output=True, text=True
    )
    assert unsafe.returncode == 1
    assert "Error: The configuration is not safe to start with" in unsafe.stderr
    assert "PRO_BASE_URL must be set" in unsafe.stderr
    assert "Traceback" not in unsafe.stderr


def _safe_production_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRO_ENV", "production")
    monkeypatch.setenv("PRO_SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("PRO_BASE_URL", "https://pro.example.test")
    monkeypatch.setenv("PRO_MAIL_SENDER", "questionari@pro.example.test")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(answers=response_sets(INSTRUMENTS["qlq_c30"]))
def test_score_command_agrees_with_the_independent_reference(
    runner: FlaskCliRunner, answers: dict[int, int | None]
) -> None:
    payload = json.dumps({str(item): value for item, value in answers.items()})
    result = runner.invoke(args=["score", "qlq_c30", "-"], input=payload)
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    expected = REFERENCES["qlq_c30"](answers)
    assert printed.keys() == expected.keys()
    for scale, value in expected.items():
        if value is None:
            assert printed[scale] is None, scale
        else:
            assert printed[scale] == pytest.approx(value, abs=1e-9), scale
