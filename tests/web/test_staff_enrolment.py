"""Enrolment from the staff workspace: the form, the checklist, bad input that changes nothing."""

from __future__ import annotations

import re
import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient

from pro_app.extensions import db
from pro_app.models import Assessment, AuditEvent, Message, Patient, PatientContact, PatientLink
from pro_app.models.types import utcnow
from pro_app.protocol.eligibility import load_checklist
from tests import factories

CHECKLIST = load_checklist(
    Path(__file__).resolve().parents[2] / "questionnaires" / "eligibility.yaml"
)
NURSE = "nurse@mi01.example.org"


def today_in_rome() -> date:
    return utcnow().astimezone(ZoneInfo("Europe/Rome")).date()


def eligible_answers() -> dict[str, str]:
    return {
        f"eligibility_{c.code}": "yes" if c.kind == "inclusion" else "no"
        for c in CHECKLIST.criteria
    }


def valid_form(**changes: Any) -> dict[str, Any]:
    """What a nurse fills in for an eligible patient; `changes` replace fields (None drops)."""
    data: dict[str, Any] = {
        "study_code": "MI01-0042",
        "arm": "tae",
        "randomized_on": (today_in_rome() - timedelta(days=2)).isoformat(),
        "language": "it",
        "timezone": "Europe/Rome",
        "email": "paziente@example.org",
        "mobile": "347 123 4567",
        "preferred_channel": "email",
        "birth_year": "1956",
        **eligible_answers(),
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


@pytest.fixture
def nurse(app: Flask, client: FlaskClient) -> int:
    """A signed-in nurse of MI01 who reads the workspace in English."""
    user_id = factories.staff_user(app, NURSE, language="en")
    assert factories.sign_in(client, NURSE).status_code == 302
    return user_id


def post_enrolment(client: FlaskClient, data: dict[str, Any]):  # type: ignore[no-untyped-def]
    page = client.get("/staff/enrol")
    assert page.status_code == 200
    return client.post("/staff/enrol", data={"csrf_token": factories.csrf_token(page.text), **data})


def row_counts(app: Flask) -> dict[str, int]:
    with app.app_context():
        return {
            model.__name__: db.session.scalar(db.select(db.func.count()).select_from(model)) or 0
            for model in (Patient, PatientContact, PatientLink, Assessment, Message, AuditEvent)
        }


def test_page_shows_every_criterion_as_a_yes_no_group(
    app: Flask, client: FlaskClient, nurse: int
) -> None:
    page = client.get("/staff/enrol")
    assert page.status_code == 200
    html = page.text
    assert len(CHECKLIST.of_kind("inclusion")) == 10
    assert len(CHECKLIST.of_kind("exclusion")) == 5
    for criterion in CHECKLIST.criteria:
        assert (
            f'<fieldset class="choice-group criterion" id="eligibility_{criterion.code}">' in html
        )
        assert f'name="eligibility_{criterion.code}" type="radio" value="yes"' in html
        assert f'name="eligibility_{criterion.code}" type="radio" value="no"' in html
    assert "Systemic therapy + TAE" in html  # arm labels in the page's language
    assert 'value="Europe/Rome"' in html
    assert 'name="site"' not in html  # a nurse enrols at her own site


def test_nurse_enrols_an_eligible_patient(app: Flask, client: FlaskClient, nurse: int) -> None:
    response = post_enrolment(client, valid_form())

    assert response.status_code == 302, response.text
    with app.app_context():
        patient = db.session.scalar(db.select(Patient).where(Patient.study_code == "MI01-0042"))
        assert patient is not None
        assert response.headers["Location"] == f"/staff/patients/{patient.id}/link"
        assert patient.site.code == "MI01"
        assert patient.arm == "tae"
        assert patient.enrolled_by_id == nurse
        assert patient.eligibility is not None
        assert patient.eligibility["checklist_version"] == CHECKLIST.version
        answers = patient.eligibility["answers"]
        assert set(answers) == {c.code for c in CHECKLIST.criteria}
        assert all(answers[c.code] is (c.kind == "inclusion") for c in CHECKLIST.criteria)
        assert patient.eligibility_confirmed_by_id == nurse
        assert patient.eligibility_confirmed_at is not None
        assert patient.contact is not None
        assert patient.contact.mobile == "+393471234567"
        assert patient.contact.birth_year == 1956
        timepoints = db.session.scalars(
            db.select(Assessment.timepoint).where(Assessment.patient_id == patient.id)
        ).all()
        assert sorted(timepoints) == ["baseline", "month3", "month6"]
        assert db.session.scalar(
            db.select(db.func.count()).select_from(Message).where(Message.patient_id == patient.id)
        )
        enrolled = db.session.scalar(
            db.select(AuditEvent).where(AuditEvent.action == "patient.enroll")
        )
        assert enrolled is not None
        assert (enrolled.actor_type, enrolled.actor_id) == ("staff", str(nurse))
        assert enrolled.after is not None
        assert enrolled.after["confirmed_by"] == nurse
        assert enrolled.after["eligibility"]["answers"] == answers
    link_page = client.get(response.headers["Location"])
    assert "Patient MI01-0042 enrolled" in link_page.text


def test_investigator_may_enrol(app: Flask, client: FlaskClient) -> None:
    factories.staff_user(app, "pi@mi01.example.org", "investigator", language="en")
    factories.sign_in(client, "pi@mi01.example.org")
    assert post_enrolment(client, valid_form()).status_code == 302


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        pytest.param(
            {key: "" for key in valid_form()}, "study_code", "Enter the study code.", id="empty"
        ),
        pytest.param({"study_code": "M" * 41}, "study_code", "3-40 capital letters", id="too-long"),
        pytest.param(
            {"study_code": "MI01 0042!"}, "study_code", "3-40 capital letters", id="format"
        ),
        pytest.param(
            {"study_code": "<script>alert(1)</script>"}, "study_code", "3-40 capital", id="script"
        ),
        pytest.param(
            {"randomized_on": (today_in_rome() + timedelta(days=3)).isoformat()},
            "randomized_on",
            "cannot be in the future",
            id="future-date",
        ),
        pytest.param(
            {"randomized_on": (today_in_rome() - timedelta(days=400)).isoformat()},
            "randomized_on",
            "more than a year ago",
            id="old-date",
        ),
        pytest.param(
            {"randomized_on": "31/02/2026"}, "randomized_on", "Enter the date as", id="no-such-day"
        ),
        pytest.param({"arm": "placebo"}, "arm", "Choose the arm.", id="unknown-arm"),
        pytest.param({"email": "paziente@"}, "email", "not a valid e-mail", id="bad-email"),
        pytest.param(
            {"email": "a" * 250 + "@example.org"}, "email", "not a valid e-mail", id="long-email"
        ),
        pytest.param({"email": "<script>@x.it"}, "email", "not a valid e-mail", id="script-email"),
        pytest.param({"mobile": "06 1234 5678"}, "mobile", "Italian mobile", id="landline"),
        pytest.param({"mobile": "347 12"}, "mobile", "Italian mobile", id="short-mobile"),
        pytest.param(
            {"mobile": None, "preferred_channel": "sms"},
            "mobile",
            "need a mobile",
            id="sms-no-mobile",
        ),
        pytest.param(
            {"email": None, "mobile": None}, "email", "e-mail address or a mobile", id="no-contact"
        ),
        pytest.param({"birth_year": "19x6"}, "birth_year", "four digits", id="bad-year"),
        pytest.param({"birth_year": "2990"}, "birth_year", "not plausible", id="future-year"),
        pytest.param({"timezone": "Mars/Olympus"}, "timezone", "time zone", id="unknown-zone"),
        pytest.param(
            {"eligibility_ki67_max_20": None},
            "eligibility_ki67_max_20",
            "Answer yes or no.",
            id="unanswered-criterion",
        ),
        pytest.param(
            {"eligibility_ki67_max_20": "no"},
            "eligibility_ki67_max_20",
            "Not eligible: inclusion criterion 8 is not met. Ki67 of no more than 20%.",
            id="inclusion-not-met",
        ),
        pytest.param(
            {"eligibility_poorly_differentiated": "yes"},
            "eligibility_poorly_differentiated",
            "Not eligible: exclusion criterion 2 applies. Poorly differentiated histology.",
            id="exclusion-applies",
        ),
        pytest.param(
            {"eligibility_age_18_to_79": "maybe"},
            "eligibility_age_18_to_79",
            "Answer yes or no.",
            id="not-yes-or-no",
        ),
    ],
)
def test_bad_input_is_refused_next_to_its_field_and_changes_nothing(
    app: Flask, client: FlaskClient, nurse: int, changes: dict[str, Any], field: str, message: str
) -> None:
    before = row_counts(app)

    response = post_enrolment(client, valid_form(**changes))

    assert response.status_code == 400
    assert row_counts(app) == before
    error = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', response.text)
    assert error, f"no error next to {field}"
    assert message in error.group(1).replace("&#39;", "'")
    assert 'class="error-summary" role="alert"' in response.text
    assert "<script>alert" not in response.text


def test_ineligible_answers_are_all_named_at_once(
    app: Flask, client: FlaskClient, nurse: int
) -> None:
    response = post_enrolment(
        client,
        valid_form(eligibility_grade_g1_g2="no", eligibility_only_extrahepatic_lesions="yes"),
    )
    assert response.status_code == 400
    assert "inclusion criterion 7 is not met" in response.text
    assert "exclusion criterion 5 applies" in response.text
    assert 'href="#eligibility_grade_g1_g2-0"' in response.text  # the summary leads to the field


def test_duplicate_study_code_is_refused(app: Flask, client: FlaskClient, nurse: int) -> None:
    factories.enrol(app, "MI01-0042")
    before = row_counts(app)

    response = post_enrolment(client, valid_form(study_code="mi01-0042 "))

    assert response.status_code == 400
    assert "already enrolled" in response.text
    assert row_counts(app) == before


def test_post_without_csrf_token_changes_nothing(
    app: Flask, client: FlaskClient, nurse: int
) -> None:
    before = row_counts(app)
    assert client.post("/staff/enrol", data=valid_form()).status_code == 400
    assert row_counts(app) == before


@pytest.mark.parametrize("role", ["analyst", "admin"])
def test_roles_without_patients_of_their_own_cannot_enrol(
    app: Flask, client: FlaskClient, role: str
) -> None:
    factories.staff_user(app, f"{role}@example.org", role, site_code=None, language="en")
    factories.sign_in(client, f"{role}@example.org")
    assert client.get("/staff/enrol").status_code == 403
    before = row_counts(app)
    token = factories.csrf_token(client.get("/auth/sign-in", follow_redirects=True).text)
    assert (
        client.post("/staff/enrol", data={"csrf_token": token, **valid_form()}).status_code == 403
    )
    assert row_counts(app) == before


def test_pro_app_check_reports_a_broken_checklist(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from pro_app import cli
    from pro_app.config import PROJECT_ROOT
    from tests.web.test_cli import _safe_production_env

    questionnaires = tmp_path / "questionnaires"
    shutil.copytree(PROJECT_ROOT / "questionnaires", questionnaires)
    checklist = questionnaires / "eligibility.yaml"
    text = checklist.read_text(encoding="utf-8")
    checklist.write_text(text.replace("\n    kind: exclusion", "\n    kind: exclude", 1))
    _safe_production_env(monkeypatch)
    monkeypatch.setenv("PRO_QUESTIONNAIRE_DIR", str(questionnaires))

    result = CliRunner().invoke(cli.check)

    assert result.exit_code == 1
    assert (
        "eligibility.yaml: criterion previous_locoregional_treatment: kind must be inclusion or "
        "exclusion, not 'exclude'" in result.output
    )
