"""SMTP refuses connections for ten minutes, then recovers: every message arrives exactly once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask

from pro_app.extensions import db
from pro_app.models import Message
from pro_app.services.dispatch import dispatch_due_messages
from tests import factories
from tests.conftest import make_config
from tests.smtp_server import Inbox, free_port, running_smtp

START = factories.rome(2026, 3, 2, 11, 0)
BOUNCING = "nobody@example.org"


class BouncingInbox(Inbox):
    """Accepts everyone but one address, which it refuses for good (550)."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if address == BOUNCING:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def app_config(database_uri: str, smtp_port: int) -> dict:
    return make_config(
        database_uri,
        MAIL_BACKEND="smtp",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=smtp_port,
        MAIL_TIMEOUT=2,
    )


def _statuses(app: Flask) -> dict[str, tuple[str, str | None]]:
    with app.app_context():
        rows = db.session.scalars(db.select(Message).where(Message.kind == "invitation"))
        return {
            m.dedupe_key: (m.status, m.last_error)
            for m in rows
            if m.dedupe_key.endswith(":baseline:invitation:email")
        }


def test_messages_wait_out_an_outage_and_arrive_once(app: Flask, smtp_port: int) -> None:
    for n in range(12):
        factories.enrol(app, f"MI01-{n:04d}", now=START)
    factories.enrol(app, "MI01-0099", now=START, email=BOUNCING)

    minute = timedelta(minutes=1)
    with app.app_context():
        for step in range(10):  # nothing listens: every pass finds the server down
            summary = dispatch_due_messages(START + step * minute)
            assert "sent 0" in summary.line()
    assert {status for status, _ in _statuses(app).values()} == {"pending"}
    assert any(error == "SMTP connection refused" for _, error in _statuses(app).values())

    inbox = BouncingInbox()
    with running_smtp(inbox, port=smtp_port), app.app_context():
        for step in range(10, 60):
            dispatch_due_messages(START + step * minute)
    received = inbox.drain()
    message_ids = [mime["Message-ID"] for mime in received]
    assert len(message_ids) == 12
    assert len(set(message_ids)) == 12
    statuses = _statuses(app)
    failed = [value for key, value in statuses.items() if value[0] == "failed"]
    assert len(failed) == 1
    assert failed[0][1] is not None
    assert "550" in failed[0][1]
    assert BOUNCING not in failed[0][1]
    assert sum(1 for status, _ in statuses.values() if status == "sent") == 12
