"""The development outbox page lists what the file backends "sent", with clickable links."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from pro_app import create_app
from pro_app.services.dispatch import dispatch_due_messages
from tests import factories
from tests.conftest import TEST_SECRET_KEY, make_config


@pytest.fixture
def app_config(database_uri: str, tmp_path: Path) -> dict:
    outbox = str(tmp_path / "outbox")
    return make_config(
        database_uri,
        MAIL_BACKEND="file",
        SMS_BACKEND="file",
        MAIL_FILE_DIR=outbox,
        SMS_FILE_DIR=outbox,
    )


def test_outbox_page_shows_sent_messages_with_links(app: Flask, client: FlaskClient) -> None:
    start = factories.rome(2026, 3, 2, 11, 0)
    factories.enrol(app, "MI01-0001", now=start)
    factories.enrol(app, "MI01-0002", now=start, email=None, mobile="3471234567", channel="sms")
    with app.app_context():
        assert "sent 2" in dispatch_due_messages(start).line()
    page = client.get("/dev/outbox")
    assert page.status_code == 200
    assert page.text.count('href="https://pro.example.test/p/') == 2
    assert "Il Suo questionario" in page.text
    assert "SMS" in page.text


def test_outbox_page_does_not_exist_in_production(tmp_path: Path) -> None:
    app = create_app(
        {
            "ENV": "production",
            "SECRET_KEY": TEST_SECRET_KEY,
            "BASE_URL": "https://pro.example.test",
            "MAIL_SENDER": "q@pro.example.test",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.sqlite3'}",
        }
    )
    outbox = app.test_client().get("/dev/outbox", base_url="https://pro.example.test")
    assert outbox.status_code == 404
