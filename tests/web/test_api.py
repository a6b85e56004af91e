"""The JSON API: bearer tokens only, the owner's scope, filters, the same data as the CSV files."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from pro_app.api import views as api_views
from pro_app.exports.registry import KINDS, build_dataset
from pro_app.exports.source import ExportFilter
from pro_app.exports.writers import csv_cell, csv_chunks
from pro_app.extensions import db
from pro_app.models import Assessment, AuditEvent, StaffUser
from pro_app.models.types import utcnow
from pro_app.services import answering, api_tokens, audit
from pro_app.services.definitions import instrument_registry, trial_schedule
from tests import factories
from tests.conftest import make_config

AS_OF = date.today().isoformat()
ANALYST = "analyst@example.org"
INVESTIGATOR = "investigator@mi01.example.org"
PATIENTS = {  # study code -> (site, e-mail, mobile)
    "MI01-0001": ("MI01", "anna.rossi@example.org", "+393471234567"),
    "RM01-0001": ("RM01", "mario.bianchi@example.org", "+393489876543"),
}


@pytest.fixture
def app_config(database_uri: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    limit = getattr(request, "param", "1000 per minute")
    return make_config(database_uri, API_RATE_LIMIT=limit)


@pytest.fixture
def links(app: Flask) -> dict[str, str]:
    """Two patients at two sites, each with a completed baseline; returns their link tokens."""
    tokens = {}
    for code, (site, email, mobile) in PATIENTS.items():
        enrolled = factories.enrol(app, code, site_code=site, email=email, mobile=mobile)
        _complete_baseline(app, enrolled.patient_id)
        tokens[code] = enrolled.token
    return tokens


def _complete_baseline(app: Flask, patient_id: int) -> None:
    with app.app_context():
        assessment = db.session.scalar(
            db.select(Assessment).where(
                Assessment.patient_id == patient_id, Assessment.timepoint == "baseline"
            )
        )
        assert assessment is not None
        registry = instrument_registry()
        values: dict[str, int | None] = {}
        for code in trial_schedule().timepoint("baseline").instruments:
            for item in registry.get(code).items:
                values[f"{code}-{item.number}"] = item.response_scale.min + item.number % 2
        values[next(iter(values))] = None  # one skipped item
        now = utcnow()
        answering.store_answers(assessment, values, now=now, actor=audit.SYSTEM)
        assert answering.submit(assessment, now, audit.SYSTEM)
        db.session.commit()


def _token(app: Flask, email: str, role: str, site: str | None) -> str:
    user_id = factories.staff_user(app, email, role=role, site_code=site)
    with app.app_context():
        user = db.session.get(StaffUser, user_id)
        assert user is not None
        _row, raw = api_tokens.create_token(user, "script", utcnow())
        db.session.commit()
        return raw


@pytest.fixture
def analyst(app: Flask) -> str:
    return _token(app, ANALYST, "analyst", None)


@pytest.fixture
def investigator(app: Flask) -> str:
    return _token(app, INVESTIGATOR, "investigator", "MI01")


def _get(client: FlaskClient, path: str, token: str | None, **headers: str) -> Any:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.get(path, headers=headers)


def _export(client: FlaskClient, token: str, kind: str, query: str = "") -> dict[str, Any]:
    response = _get(client, f"/api/v1/exports/{kind}?as_of={AS_OF}{query}", token)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = json.loads(response.text)
    return document


def test_without_a_token_the_answer_is_401(app: Flask, client: FlaskClient) -> None:
    for path in ("/api/v1/exports", "/api/v1/exports/scores", "/api/v1/nothing"):
        response = client.get(path)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.json == {
            "error": "unauthorized",
            "message": "Send your API token in the header: Authorization: Bearer <token>.",
        }


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer pro_not-a-real-token",
        "Bearer ",
        "Basic YW5hbHlzdDpwYXNzd29yZA==",
        "pro_not-a-real-token",
    ],
)
def test_a_wrong_token_is_401(app: Flask, client: FlaskClient, authorization: str) -> None:
    response = client.get("/api/v1/exports", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json["error"] in ("unauthorized", "invalid_token")


def test_a_revoked_token_is_401(app: Flask, client: FlaskClient, analyst: str) -> None:
    assert _get(client, "/api/v1/exports", analyst).status_code == 200
    with app.app_context():
        token = api_tokens.find_token(analyst, utcnow())
        assert token is not None
        api_tokens.revoke_token(token.staff_user, token.id, utcnow())
        db.session.commit()
    response = _get(client, "/api/v1/exports", analyst)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_the_token_is_not_accepted_in_the_address(
    app: Flask, client: FlaskClient, analyst: str
) -> None:
    assert client.get(f"/api/v1/exports?access_token={analyst}").status_code == 401


def test_a_signed_in_browser_is_not_enough(app: Flask, client: FlaskClient, analyst: str) -> None:
    assert factories.sign_in(client, ANALYST).status_code == 302
    assert client.get("/analyst/api-tokens").status_code == 200  # the session works on pages
    response = client.get("/api/v1/exports/scores")
    assert response.status_code == 401
    assert "Set-Cookie" not in response.headers


def test_a_nurse_cannot_use_the_api(app: Flask, client: FlaskClient, analyst: str) -> None:
    with app.app_context():
        user = db.session.scalar(db.select(StaffUser).where(StaffUser.email == ANALYST))
        assert user is not None
        user.role = "nurse"  # a token made while an analyst, then the role changed
        db.session.commit()
    response = _get(client, "/api/v1/exports/scores", analyst)
    assert response.status_code == 403
    assert response.json["error"] == "forbidden"


def test_the_list_of_exports(app: Flask, client: FlaskClient, analyst: str) -> None:
    response = _get(client, "/api/v1/exports", analyst)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    listed = response.json["exports"]
    assert [entry["kind"] for entry in listed] == list(KINDS)
    assert listed[0] == {
        "kind": "scores",
        "label": "Scores, long (one row per scale)",
        "url": "https://pro.example.test/api/v1/exports/scores",
    }
    assert "timepoint" in response.json["parameters"]


def test_headers_of_an_export(app: Flask, client: FlaskClient, analyst: str) -> None:
    response = _get(client, f"/api/v1/exports/scores?as_of={AS_OF}", analyst)
    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Content-Language"] == "en"
    assert "Set-Cookie" not in response.headers


def test_an_export_document(
    app: Flask, client: FlaskClient, analyst: str, links: dict[str, str]
) -> None:
    document = _export(client, analyst, "scores", "&timepoint=baseline")
    assert document["kind"] == "scores"
    assert document["generated_at"].endswith("+00:00")
    assert document["filters"] == {
        "site": None,
        "arm": None,
        "timepoint": "baseline",
        "instrument": None,
        "randomized_from": None,
        "randomized_to": None,
        "as_of": AS_OF,
    }
    assert "provisional" in document["note"]
    names = [variable["name"] for variable in document["variables"]]
    assert names[:3] == ["study_code", "site", "arm"]
    for variable in document["variables"]:
        assert set(variable) == {"name", "label", "type", "values", "missing"}
        assert variable["label"]
    arm = next(v for v in document["variables"] if v["name"] == "arm")
    assert set(arm["values"]) == {"tae", "control"}
    rows = document["rows"]
    assert rows
    assert all(list(row) == names for row in rows)
    assert {row["study_code"] for row in rows} == set(PATIENTS)
    assert {row["timepoint"] for row in rows} == {"baseline"}
    assert any(row["score"] is None for row in rows) or all(
        isinstance(row["score"], float) for row in rows
    )
    assert all(date.fromisoformat(row["randomized_on"]) for row in rows)


def test_an_export_is_audited(
    app: Flask, client: FlaskClient, analyst: str, links: dict[str, str]
) -> None:
    _export(client, analyst, "items", "&site=MI01")
    with app.app_context():
        event = db.session.scalar(
            db.select(AuditEvent).where(AuditEvent.action == "export.download")
        )
        assert event is not None
        assert event.after == {
            "kind": "items",
            "format": "json",
            "via": "api",
            "filters": {"site": "MI01"},
        }


@pytest.mark.parametrize(
    ("query", "kept"),
    [
        ("&site=RM01", {"RM01-0001"}),
        ("&site=MI01", {"MI01-0001"}),
        ("&arm=control", set()),
        ("&arm=tae", set(PATIENTS)),
        (f"&randomized_from={date.today().replace(year=date.today().year + 1)}", set()),
        (f"&randomized_to={AS_OF}", set(PATIENTS)),
    ],
)
def test_filters_are_applied(
    app: Flask,
    client: FlaskClient,
    analyst: str,
    links: dict[str, str],
    query: str,
    kept: set[str],
) -> None:
    document = _export(client, analyst, "scores", query)
    assert {row["study_code"] for row in document["rows"]} == kept


def test_the_instrument_filter(
    app: Flask, client: FlaskClient, analyst: str, links: dict[str, str]
) -> None:
    document = _export(client, analyst, "items", "&instrument=qlq_c30")
    assert document["rows"]
    assert {row["instrument"] for row in document["rows"]} == {"qlq_c30"}


@pytest.mark.parametrize("kind", ["scores", "items", "scores-wide", "compliance", "audit"])
def test_an_investigator_sees_only_their_site(
    app: Flask, client: FlaskClient, investigator: str, links: dict[str, str], kind: str
) -> None:
    document = _export(client, investigator, kind)
    assert document["rows"]
    text = json.dumps(document)
    assert "RM01-0001" not in text
    if "site" in document["rows"][0]:
        assert {row["site"] for row in document["rows"]} == {"MI01"}


def test_an_investigator_cannot_ask_for_another_site(
    app: Flask, client: FlaskClient, investigator: str, links: dict[str, str]
) -> None:
    response = _get(client, "/api/v1/exports/scores?site=RM01", investigator)
    assert response.status_code == 400
    assert response.json == {
        "error": "bad_request",
        "message": "There is no such site among yours.",
        "field": "site",
    }


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("arm=nope", "arm", "There is no such arm."),
        ("timepoint=week1", "timepoint", "There is no such time point."),
        ("randomized_from=24/11/2026", "randomized_from", "Enter dates as YYYY-MM-DD."),
        ("as_of=yesterday", "as_of", "Enter dates as YYYY-MM-DD."),
    ],
)
def test_a_bad_filter_is_400_with_a_message(
    app: Flask, client: FlaskClient, analyst: str, query: str, field: str, message: str
) -> None:
    response = _get(client, f"/api/v1/exports/scores?{query}", analyst)
    assert response.status_code == 400
    assert response.mimetype == "application/json"
    assert response.json == {"error": "bad_request", "message": message, "field": field}
    with app.app_context():
        assert (
            db.session.scalar(
                db.select(db.func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "export.download")
            )
            == 0
        )


def test_messages_in_italian_when_asked(app: Flask, client: FlaskClient, analyst: str) -> None:
    italian = {"Accept-Language": "it-IT,it;q=0.9,en;q=0.5"}
    response = _get(client, "/api/v1/exports/scores?arm=nope", analyst, **italian)
    assert response.status_code == 400
    assert response.json["message"] == "Questo braccio non esiste."
    assert response.headers["Content-Language"] == "it"
    listed = _get(client, "/api/v1/exports", analyst, **italian)
    assert listed.json["exports"][0]["label"] != "Scores, long (one row per scale)"
    english = _get(client, "/api/v1/exports/scores?arm=nope", analyst, **{"Accept-Language": "de"})
    assert english.json["message"] == "There is no such arm."


def test_unknown_kind_parameter_and_route(app: Flask, client: FlaskClient, analyst: str) -> None:
    kind = _get(client, "/api/v1/exports/everything", analyst)
    assert kind.status_code == 400
    assert kind.json["field"] == "kind"
    parameter = _get(client, "/api/v1/exports/scores?sitte=MI01", analyst)
    assert parameter.status_code == 400
    assert "sitte" in parameter.json["message"]
    for path in ("/api/v1/", "/api/v1/patients", "/api/v1/exports/scores/extra"):
        missing = _get(client, path, analyst)
        assert missing.status_code == 404
        assert missing.json["error"] == "not_found"


def test_the_api_is_read_only(app: Flask, client: FlaskClient, analyst: str) -> None:
    assert client.post("/api/v1/exports").status_code == 401  # no token, no CSRF needed
    for path in ("/api/v1/exports", "/api/v1/exports/scores"):
        response = client.post(path, headers={"Authorization": f"Bearer {analyst}"})
        assert response.status_code == 405
        assert response.json["error"] == "method_not_allowed"
        assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize("kind", list(KINDS))
def test_json_rows_equal_the_csv_export(
    app: Flask, client: FlaskClient, analyst: str, links: dict[str, str], kind: str
) -> None:
    document = _export(client, analyst, kind)
    with app.app_context():
        user = db.session.scalar(db.select(StaffUser).where(StaffUser.email == ANALYST))
        dataset = build_dataset(kind, user, ExportFilter(), date.fromisoformat(AS_OF))
        written = b"".join(csv_chunks(dataset)).decode("utf-8")
    header, *csv_rows = list(csv.reader(io.StringIO(written)))
    assert [variable["name"] for variable in document["variables"]] == header
    json_rows = [[csv_cell(row[name]) for name in header] for row in document["rows"]]
    assert json_rows == csv_rows
    assert len(json_rows) > 0


@pytest.mark.parametrize("kind", list(KINDS))
def test_no_contact_details_or_link_tokens(
    app: Flask, client: FlaskClient, analyst: str, links: dict[str, str], kind: str
) -> None:
    response = _get(client, f"/api/v1/exports/{kind}?as_of={AS_OF}", analyst)
    assert response.status_code == 200
    text = response.text
    for code, (_site, email, mobile) in PATIENTS.items():
        assert email not in text
        assert email.split("@")[0] not in text
        assert mobile not in text
        assert mobile.removeprefix("+39") not in text
        assert links[code] not in text


@pytest.mark.parametrize("app_config", ["3 per minute"], indirect=True)
def test_the_rate_limit_engages(app: Flask, client: FlaskClient, analyst: str) -> None:
    statuses = [_get(client, "/api/v1/exports", analyst).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    limited = _get(client, "/api/v1/exports", analyst)
    assert limited.json["error"] == "too_many_requests"
    assert limited.mimetype == "application/json"
    assert "Retry-After" in limited.headers
    # Another token has its own counter.
    other = _token(app, "other@example.org", "analyst", None)
    assert _get(client, "/api/v1/exports", other).status_code == 200


def test_last_use_is_recorded(app: Flask, client: FlaskClient, analyst: str) -> None:
    with app.app_context():
        token = api_tokens.find_token(analyst, utcnow())
        assert token is not None
        assert token.last_used_at is None
    _get(client, "/api/v1/exports", analyst)
    with app.app_context():
        token = api_tokens.find_token(analyst, utcnow())
        assert token is not None
        assert token.last_used_at is not None


def test_rows_are_streamed_in_chunks(
    app: Flask,
    client: FlaskClient,
    analyst: str,
    links: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(api_views, "ROWS_PER_CHUNK", 2)
    response = client.get(
        f"/api/v1/exports/items?as_of={AS_OF}",
        headers={"Authorization": f"Bearer {analyst}"},
        buffered=False,
    )
    chunks = [chunk.decode() if isinstance(chunk, bytes) else chunk for chunk in response.response]
    response.close()
    assert chunks[0].startswith('{"kind": "items"')
    assert chunks[0].endswith('"rows": [')
    document = json.loads("".join(chunks))
    assert len(chunks) == 2 + (len(document["rows"]) + 1) // 2
