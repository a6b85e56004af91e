"""One question per screen, by configuration."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests import factories
from tests.conftest import make_config


@pytest.fixture
def app_config(database_uri: str) -> dict:
    return make_config(database_uri, PATIENT_ITEMS_PER_PAGE=1)


def test_each_page_shows_one_question(app: Flask, client: FlaskClient) -> None:
    html = factories.open_link(client, factories.enrol(app))
    assert set(re.findall(r'type="radio" name="([a-z0-9_]+-\d+)"', html)) == {"qlq_c30-1"}
    assert "Domande 1–1 di 51" in html
    last = client.get("/q/page/51").text
    assert set(re.findall(r'type="radio" name="([a-z0-9_]+-\d+)"', last)) == {"qlq_gi_net21-51"}
    assert client.get("/q/page/52").headers["Location"] == "/q"
