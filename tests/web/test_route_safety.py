"""Across every route: POST without a CSRF token is refused, GET writes nothing, no 500."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func

from pro_app.extensions import db
from pro_app.models import Assessment
from tests import factories

# Routes whose POST is checked by the view itself (they re-render rather than fail, or carry the
# token in a header); each has its own test of that behaviour.
SELF_CHECKED = {"/q/page/<int:number>", "/q/review", "/q/answer", "/p/<token>"}
# The API reads no cookie: any write is refused with 401 (no token) or 405 (read-only).
SELF_CHECKED |= {"/api/v1/", "/api/v1/<path:_rest>"}


def _row_counts(app: Flask) -> dict[str, int]:
    with app.app_context():
        return {
            table.name: db.session.scalar(db.select(func.count()).select_from(table)) or 0
            for table in db.metadata.sorted_tables
            if table.name != "staff_session"  # sign-in itself writes one; checked elsewhere
        }


def _signed_in_investigator(app: Flask) -> tuple[FlaskClient, dict[str, int]]:
    enrolled = factories.enrol(app, "MI01-0001")
    factories.staff_user(app, "inv@mi01.example.org", "investigator")
    client = app.test_client()
    factories.sign_in(client, "inv@mi01.example.org")
    with app.app_context():
        assessment_id = db.session.scalar(
            db.select(Assessment.id).where(Assessment.patient_id == enrolled.patient_id)
        )
    return client, {
        "patient_id": enrolled.patient_id,
        "assessment_id": assessment_id or 0,
        "number": 1,
        "token": enrolled.token,
    }


def _path(rule: str, values: dict[str, object]) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values.get(m.group(1), 1)), rule)


def _rules(app: Flask, method: str) -> list[str]:
    return sorted(
        {
            rule.rule
            for rule in app.url_map.iter_rules()
            if method in (rule.methods or set()) and not rule.rule.startswith("/static")
        }
    )


def test_every_post_without_csrf_is_refused(app: Flask) -> None:
    client, values = _signed_in_investigator(app)
    before = _row_counts(app)
    refused = {}
    for rule in _rules(app, "POST"):
        if rule in SELF_CHECKED:
            continue
        response = client.post(_path(rule, values), data={"action": "submit"})
        refused[rule] = response.status_code
        response.close()
    assert {rule: code for rule, code in refused.items() if code != 400} == {}
    assert _row_counts(app) == before


@pytest.mark.parametrize("role", ["nurse", "investigator", "analyst", "admin"])
def test_no_get_writes_or_fails(app: Flask, role: str) -> None:
    client, values = _signed_in_investigator(app)
    if role != "investigator":
        factories.staff_user(app, f"{role}@example.org", role, "MI01" if role == "nurse" else None)
        client = app.test_client()
        factories.sign_in(client, f"{role}@example.org")
    before = _row_counts(app)
    for rule in _rules(app, "GET"):
        if rule.startswith("/auth/sign-in"):
            continue
        response = client.get(_path(rule, values))
        assert response.status_code < 500, (rule, response.status_code)
        response.close()  # streamed downloads (CSV) finish before the next request
    after = _row_counts(app)
    assert after == before
