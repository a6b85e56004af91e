"""The optional second factor: the year of birth before any question is shown."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests import factories
from tests.conftest import make_config


@pytest.fixture
def app_config(database_uri: str) -> dict:
    return make_config(database_uri, PATIENT_SECOND_FACTOR=True)


def _start(client: FlaskClient, enrolled: factories.Enrolled, year: str) -> int:
    welcome = client.get(enrolled.path)
    assert 'name="birth_year"' in welcome.text
    response = client.post(
        enrolled.path,
        data={
            "csrf_token": factories.csrf_token(welcome.text),
            "action": "start",
            "birth_year": year,
        },
    )
    return response.status_code


def test_wrong_year_looks_like_an_invalid_link(app: Flask, client: FlaskClient) -> None:
    enrolled = factories.enrol(app, birth_year=1956)
    assert _start(client, enrolled, "1957") == 404
    assert _start(client, enrolled, "abc") == 404
    assert client.get("/q").status_code == 401
    assert _start(client, enrolled, "1956") == 302
    assert client.get("/q").status_code == 302
