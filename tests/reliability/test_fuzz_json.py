"""Hostile JSON and query parameters: the autosave endpoint, the API and the analyst downloads.

Whatever the body, content type, token or filter: never a 5xx, a refusal is JSON (or a page)
that says why, and only answers valid for their item are stored.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from pro_app.exports.registry import KINDS
from pro_app.extensions import db
from pro_app.models import Answer, StaffUser
from pro_app.models.types import utcnow
from pro_app.services import api_tokens
from pro_app.services.definitions import instrument_registry
from tests import factories
from tests.conftest import make_config
from tests.reliability.test_fuzz_forms import FUZZ, MALICIOUS, hostile_text

FILTERS = ("site", "arm", "timepoint", "instrument", "randomized_from", "randomized_to", "as_of")
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=12,
)
# Mostly the first page's own items and plausible codes, so that saving is really reached.
item_names = st.one_of(
    st.sampled_from(["qlq_c30-1", "qlq_c30-2", "qlq_c30-3", "qlq_c30-4", "qlq_c30-5"]),
    st.sampled_from(["qlq_c30-6", "qlq_gi_net21-31", "qlq_c30-0", "qlq_c30-01", "QLQ_C30-1"]),
    hostile_text,
)
answer_values = st.one_of(
    st.sampled_from(["1", "2", "3", "4"]),
    st.sampled_from(["0", "5", "7", "", " 2", "02", "２", "²", "٣", "-1", "1.0", "4\x00"]),
    json_values,
)


@pytest.fixture
def app_config(database_uri: str) -> dict[str, Any]:
    return make_config(database_uri, RATELIMIT_ENABLED=False)


def stored_answers_are_valid(app: Flask) -> list[str]:
    with app.app_context():
        registry = instrument_registry()
        wrong = []
        for answer in db.session.scalars(db.select(Answer)):
            scale = registry.get(answer.instrument).item(answer.item).response_scale
            if answer.value is not None and not scale.min <= answer.value <= scale.max:
                wrong.append(f"{answer.instrument}-{answer.item} = {answer.value}")
        return wrong


def test_hostile_autosaves_are_refused_in_json(app: Flask, client: FlaskClient) -> None:
    html = factories.open_link(client, factories.enrol(app))
    csrf = factories.csrf_token(html)
    form_key = factories.form_key(html)
    keys = st.one_of(st.just(form_key), st.sampled_from([form_key[:-2] + "xx", ""]), hostile_text)
    on_this_page = st.sampled_from([f"qlq_c30-{n}" for n in range(1, 6)])
    near_valid = st.fixed_dictionaries(
        {"form_key": st.just(form_key), "name": on_this_page, "value": answer_values}
    )
    payloads = st.one_of(
        near_valid,
        near_valid,
        st.fixed_dictionaries(
            {"form_key": keys, "name": item_names, "value": answer_values},
            optional={"extra": json_values},
        ),
        json_values,
    )

    @FUZZ
    @given(payload=payloads, how=st.sampled_from(["json", "json", "json", "text", "form", "bad"]))
    def autosave(payload: object, how: str) -> None:
        headers = {"X-CSRFToken": csrf}
        if how == "json":
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass")
            response = client.post(
                "/q/answer", data=body, content_type="application/json", headers=headers
            )
        elif how == "text":
            response = client.post(
                "/q/answer", data=json.dumps(payload), content_type="text/plain", headers=headers
            )
        elif how == "form":
            response = client.post("/q/answer", data={"payload": str(payload)}, headers=headers)
        else:  # not JSON at all, though it says so
            response = client.post(
                "/q/answer", data=b"{\xff\x00", content_type="application/json", headers=headers
            )
        assert response.status_code in (200, 400, 401, 409, 413), response.status_code
        assert response.is_json, response.text[:500]
        assert response.json["status"] in ("saved", "invalid", "csrf", "stale", "closed")
        if response.status_code == 200:  # saved: a response code (" 2" and "02" are 2 too)
            assert isinstance(payload, dict)
            assert int(str(payload["value"])) in range(0, 11)
        assert stored_answers_are_valid(app) == []

    autosave()


def test_an_oversized_autosave_gets_413(app: Flask, client: FlaskClient) -> None:
    html = factories.open_link(client, factories.enrol(app))
    payload = {"form_key": factories.form_key(html), "name": "qlq_c30-1", "value": "1" * 1_100_000}
    response = client.post(
        "/q/answer", json=payload, headers={"X-CSRFToken": factories.csrf_token(html)}
    )
    assert response.status_code == 413
    assert stored_answers_are_valid(app) == []


def api_token(app: Flask) -> str:
    factories.enrol(app)
    factories.staff_user(app, "analyst@example.org", "analyst", None)
    with app.app_context():
        user = db.session.scalar(
            db.select(StaffUser).where(StaffUser.email == "analyst@example.org")
        )
        assert user is not None
        _row, raw = api_tokens.create_token(user, "script", utcnow())
        db.session.commit()
    return raw


query = st.lists(
    st.tuples(st.one_of(st.sampled_from(FILTERS), hostile_text), hostile_text), max_size=4
)
kinds = st.one_of(st.sampled_from(list(KINDS)), st.sampled_from(MALICIOUS[:20]), hostile_text)


def url(path: str, pairs: list[tuple[str, str]]) -> str:
    return f"{path}?{urlencode(pairs, encoding='utf-8', errors='surrogatepass')}"


def test_hostile_api_requests_get_json_errors(app: Flask) -> None:
    raw = api_token(app)
    client = app.test_client()
    printable = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=80)
    tokens = st.one_of(st.just(raw), st.just(raw[:-1]), printable)

    @FUZZ
    @given(
        kind=kinds, pairs=query, token=tokens, scheme=st.sampled_from(["Bearer", "bearer", "Basic"])
    )
    def call(kind: str, pairs: list[tuple[str, str]], token: str, scheme: str) -> None:
        path = "/api/v1/exports/" + urlencode({"": kind}, errors="surrogatepass")[1:]
        response = client.get(url(path, pairs), headers={"Authorization": f"{scheme} {token}"})
        body = response.get_data(as_text=True)  # streams the whole export
        assert response.status_code in (200, 400, 401, 403, 404, 405), response.status_code
        document = json.loads(body)
        if response.status_code >= 400:
            assert document["error"]
            assert document["message"]
        else:
            assert "rows" in document

    call()


def test_hostile_download_filters_are_refused_cleanly(app: Flask) -> None:
    factories.enrol(app)
    factories.staff_user(app, "analyst@example.org", "analyst", None)
    client = app.test_client()
    assert factories.sign_in(client, "analyst@example.org").status_code == 302
    paths = st.sampled_from(
        [
            "/analyst/export/scores.csv",
            "/analyst/export/items.xlsx",
            "/analyst/export/compliance.csv",
            "/analyst/plots/completion.svg",
            "/analyst/plots/qlq_c30/QL2.svg",
            "/staff/audit.csv",
        ]
    )

    @FUZZ
    @given(path=paths, pairs=query)
    def download(path: str, pairs: list[tuple[str, str]]) -> None:
        response = client.get(url(path, pairs))
        response.get_data()  # streams the whole file
        assert response.status_code in (200, 400, 403, 404), response.status_code
        if response.status_code == 400:
            assert 'role="alert"' in response.text

    download()
