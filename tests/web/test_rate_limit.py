"""Rate limits on the personal link: token guessing is slowed down per address."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import make_config


@pytest.fixture
def app_config(database_uri: str) -> dict:
    return make_config(database_uri, PATIENT_LINK_RATE_LIMIT="5 per minute")


def test_token_guessing_hits_the_rate_limit(app: Flask, client: FlaskClient) -> None:
    statuses = [client.post(f"/p/guess{n:040d}", data={}).status_code for n in range(7)]
    assert statuses[:5] == [400] * 5  # no CSRF token: refused, and counted
    assert statuses[5:] == [429, 429]
    limited = client.get("/p/another-guess")
    assert limited.status_code == 429
    assert "Troppi tentativi" in limited.text
