"""`pro-app scheduler` killed (SIGKILL) mid-pass and restarted: nothing lost, nothing sent twice.

A real SMTP server (aiosmtpd) holds one delivery while the test kills the scheduler. Held before
the message is handed over (RCPT), it shows the ordinary crash: the rows the dead pass claimed
return after OUTBOX_CLAIM_SECONDS and go out once. Held after the server took the message but
before the pass could record it (DATA), it shows the one window of at-least-once delivery that
SMTP cannot close: that message goes out again, with the same Message-ID.
"""

from __future__ import annotations

import asyncio
import email
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import Message as MimeMessage
from pathlib import Path

import pytest
from flask import Flask

from pro_app.extensions import db
from pro_app.models import Message, SchedulerLease
from pro_app.models.types import utcnow
from tests import factories
from tests.reliability.live_server import server_env
from tests.smtp_server import running_smtp
from tests.web.test_cli import PRO_APP

PATIENTS = 6
HOLD_AT = 3  # the delivery held while the scheduler is killed
TIMEOUT = 90.0  # start-up, lease expiry and passes on a loaded machine; polls return early
SENDER = "Questionari <questionari@pro.example.test>"


class HoldingInbox:
    """aiosmtpd handler that keeps every message and holds the HOLD_AT-th delivery at a stage."""

    def __init__(self, stage: str) -> None:
        self.stage = stage  # "RCPT": before the message is handed over; "DATA": after
        self.messages: list[MimeMessage] = []
        self.arrivals = 0
        self.lock = threading.Lock()
        self.holding = threading.Event()
        self.release = threading.Event()

    async def _hold_if_due(self, stage: str) -> None:
        if stage != self.stage:
            return
        with self.lock:
            self.arrivals += 1
            due = self.arrivals == HOLD_AT
        if due:
            self.holding.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        await self._hold_if_due("RCPT")
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        with self.lock:
            self.messages.append(email.message_from_bytes(envelope.content))
        await self._hold_if_due("DATA")
        return "250 OK"

    def message_ids(self) -> Counter[str]:
        with self.lock:
            return Counter(str(message["Message-ID"]) for message in self.messages)


def _midday_zone() -> str:
    """A fixed-offset zone where it is about noon now: no quiet hours, invitations due."""
    offset = (12 - datetime.now(UTC).hour + 12) % 24 - 12
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/UTC"  # Etc/GMT signs are inverted


def _poll(condition, what: str, timeout: float = TIMEOUT) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@contextmanager
def _scheduler(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen([PRO_APP, "scheduler"], env=env, stdout=out, stderr=out)  # type: ignore[list-item]
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=TIMEOUT)


def _due_now(app: Flask) -> list[int]:
    """The outbox rows due now (the invitations; reminders come days later)."""
    with app.app_context():
        return list(
            db.session.scalars(db.select(Message.id).where(Message.next_attempt_at <= utcnow()))
        )


def _statuses(app: Flask, ids: list[int]) -> Counter[str]:
    with app.app_context():
        return Counter(db.session.scalars(db.select(Message.status).where(Message.id.in_(ids))))


def _kill_mid_pass_then_restart(app: Flask, database_uri: str, tmp_path: Path, stage: str):  # type: ignore[no-untyped-def]
    zone = _midday_zone()
    for index in range(PATIENTS):
        factories.enrol(app, f"MI01-SC{index:02d}", timezone=zone)
    due = _due_now(app)
    assert len(due) == PATIENTS
    inbox = HoldingInbox(stage)
    with running_smtp(inbox) as port:
        env = server_env(
            database_uri,
            tmp_path,
            PRO_MAIL_BACKEND="smtp",
            PRO_MAIL_SERVER="127.0.0.1",
            PRO_MAIL_PORT=str(port),
            PRO_MAIL_SENDER=SENDER,
            PRO_MAIL_TIMEOUT="120",  # the held delivery must outlast the kill
            PRO_SCHEDULER_INTERVAL_SECONDS="1",
            PRO_SCHEDULER_LEASE_SECONDS="2",
            PRO_OUTBOX_CLAIM_SECONDS="3",
        )
        log = tmp_path / "scheduler.log"
        with _scheduler(env, log) as first:
            _poll(inbox.holding.is_set, f"delivery {HOLD_AT} to reach {stage}")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=TIMEOUT)
        inbox.release.set()
        crashed = _statuses(app, due)
        with _scheduler(env, log):
            _poll(lambda: _statuses(app, due) == {"sent": PATIENTS}, "every invitation sent")
            sent_by_then = inbox.message_ids()
            # Two more passes, to see that nothing else goes out afterwards.
            lease_runs = _lease_runs(app)
            _poll(lambda: _lease_runs(app) >= lease_runs + 2, "two more passes")
        received = inbox.message_ids()
    assert {f"<outbox-{message_id}@pro.example.test>" for message_id in due} == set(received)
    return crashed, sent_by_then, received, log.read_text(errors="replace")


def _lease_runs(app: Flask) -> float:
    with app.app_context():
        lease = db.session.get(SchedulerLease, "dispatcher")
        last = lease.last_run_at if lease is not None else None
        return last.timestamp() if last is not None else 0.0


needs_console_script = pytest.mark.skipif(PRO_APP is None, reason="console script not installed")


@needs_console_script
def test_a_scheduler_killed_mid_pass_loses_nothing_and_sends_nothing_twice(
    app: Flask, database_uri: str, tmp_path: Path
) -> None:
    crashed, sent_then, sent, log = _kill_mid_pass_then_restart(app, database_uri, tmp_path, "RCPT")
    # The kill came in the middle of the pass: some sent, the rest still claimed by it.
    assert crashed == {"sent": HOLD_AT - 1, "sending": PATIENTS - HOLD_AT + 1}
    assert sent == sent_then
    assert len(sent) == PATIENTS  # none lost
    assert set(sent.values()) == {1}  # none twice
    assert "Traceback" not in log


@needs_console_script
def test_a_kill_after_the_mail_server_took_the_message_resends_it_with_its_message_id(
    app: Flask, database_uri: str, tmp_path: Path
) -> None:
    crashed, _sent_then, sent, log = _kill_mid_pass_then_restart(
        app, database_uri, tmp_path, "DATA"
    )
    assert crashed == {"sent": HOLD_AT - 1, "sending": PATIENTS - HOLD_AT + 1}
    assert len(sent) == PATIENTS  # none lost
    # Documented at-least-once: the message the server took just before the kill goes again,
    # under the same Message-ID, so that mail systems can recognise the copy.
    assert sorted(sent.values()) == [1] * (PATIENTS - 1) + [2]
    assert "Traceback" not in log
