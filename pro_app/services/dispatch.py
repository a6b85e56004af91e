"""One dispatcher pass: claim due outbox rows, re-check them, send, record. Safe to run twice."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import update
from sqlalchemy.orm import selectinload

from pro_app.extensions import db
from pro_app.logs import event, failure_category
from pro_app.messaging import DeliveryError, EmailMessage, SmsMessage, message_id_for
from pro_app.models import (
    AssessmentStatus,
    Message,
    MessageStatus,
    Patient,
    PatientLink,
    PatientStatus,
)
from pro_app.protocol.reminders import is_quiet, next_allowed_instant
from pro_app.services import audit
from pro_app.services.assessment_states import advance_assessment_states
from pro_app.services.definitions import trial_schedule
from pro_app.services.links import issue_link, link_url, token_of
from pro_app.services.message_text import render_message
from pro_app.services.senders import Senders, senders

log = logging.getLogger(__name__)

BATCH_SIZE = 200
# A claimed row goes back to the queue if its pass dies before recording the result
# (the default of OUTBOX_CLAIM_SECONDS).
CLAIM_LEASE = timedelta(minutes=10)
# Minutes to wait after the n-th temporary failure; then the message is marked failed.
BACKOFF_MINUTES = (1, 2, 5, 10, 20, 30, 60, 120, 240)
# After this many temporary failures in a row on one channel, the pass stops using it.
CHANNEL_BREAKER = 3


@dataclass
class DispatchSummary:
    opened: int = 0
    missed: int = 0
    claimed: int = 0
    sent: int = 0
    deferred: int = 0
    cancelled: int = 0
    retrying: int = 0
    failed: int = 0

    def line(self) -> str:
        """The one-line summary printed by `pro-app reminders run` (and kept on the lease)."""
        return ", ".join(f"{field.name} {getattr(self, field.name)}" for field in fields(self))

    @classmethod
    def from_line(cls, text: str) -> DispatchSummary | None:
        """The summary a line() wrote; None if the text is not one (an older format)."""
        names = {field.name for field in fields(cls)}
        counts: dict[str, int] = {}
        for part in text.split(", "):
            name, _, number = part.partition(" ")
            if name not in names or not number.isdigit():
                return None
            counts[name] = int(number)
        return cls(**counts)


def dispatch_due_messages(now: datetime, channel_senders: Senders | None = None) -> DispatchSummary:
    """Advance assessment states, then send every due message once; commits as it goes."""
    channel_senders = channel_senders or senders()
    summary = DispatchSummary()
    summary.opened, summary.missed = advance_assessment_states(now)
    db.session.commit()
    with _objects_kept_across_commits():
        while True:
            claimed_ids = _claim_due(now)
            db.session.commit()  # the claim is visible to other passes before anything is sent
            if not claimed_ids:
                break
            summary.claimed += len(claimed_ids)
            _deliver_batch(claimed_ids, now, channel_senders, summary)
            if len(claimed_ids) < BATCH_SIZE:
                break
    log.info("dispatcher pass", extra=event("dispatch.pass", **asdict(summary)))
    return summary


@contextmanager
def _objects_kept_across_commits() -> Iterator[None]:
    # Each result is committed at once; without this every commit would expire the batch's
    # objects and the next message would reload them (4 SELECTs each). The claimed rows are this
    # pass's alone, so what it loaded stays true until it writes it.
    session = db.session()
    previous = session.expire_on_commit
    session.expire_on_commit = False
    try:
        yield
    finally:
        session.expire_on_commit = previous


def deliver_now(message: Message, now: datetime, channel_senders: Senders | None = None) -> str:
    """Send one message at once (staff pressed "send"), through the same checks as a pass."""
    db.session.flush()
    claimed = _claim_due(now, only_id=message.id)
    db.session.commit()
    if not claimed:
        return "claimed elsewhere"
    summary = DispatchSummary(claimed=1)
    with _objects_kept_across_commits():
        _deliver_batch(claimed, now, channel_senders or senders(), summary)
    db.session.refresh(message)
    return str(message.status)


def _claim_due(now: datetime, only_id: int | None = None) -> list[int]:
    due = (
        db.select(Message.id)
        .where(
            Message.status.in_([MessageStatus.PENDING, MessageStatus.SENDING]),
            Message.next_attempt_at <= now,
        )
        .order_by(Message.next_attempt_at, Message.id)
        .limit(BATCH_SIZE)
    )
    if only_id is not None:
        due = due.where(Message.id == only_id)
    if db.engine.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)  # concurrent passes take disjoint rows
    # On SQLite the UPDATE takes the database's single write lock, so a second pass waits and
    # then finds these rows already claimed.
    claimed = db.session.execute(
        update(Message)
        .where(Message.id.in_(due.scalar_subquery()))
        .values(
            status=MessageStatus.SENDING,
            attempts=Message.attempts + 1,
            next_attempt_at=now + _claim_lease(),
        )
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    )
    return list(claimed.scalars())


def _claim_lease() -> timedelta:
    seconds = current_app.config.get("OUTBOX_CLAIM_SECONDS", CLAIM_LEASE.total_seconds())
    return timedelta(seconds=float(seconds))


def _deliver_batch(
    ids: list[int], now: datetime, channel_senders: Senders, summary: DispatchSummary
) -> None:
    messages = list(
        db.session.scalars(
            db.select(Message)
            .where(Message.id.in_(ids))
            .options(
                selectinload(Message.patient).selectinload(Patient.contact),
                selectinload(Message.assessment),
            )
            .order_by(Message.scheduled_for, Message.id)
        )
    )
    messages = _cancel_superseded(messages, summary)
    links = _active_links({message.patient_id for message in messages})
    failures_in_a_row: dict[str, int] = defaultdict(int)
    for message in messages:
        if failures_in_a_row[message.channel] >= CHANNEL_BREAKER:
            _release(message, now + timedelta(minutes=BACKOFF_MINUTES[0]))
            summary.retrying += 1
        else:
            outcome = _deliver(message, now, channel_senders, summary, links)
            failures_in_a_row[message.channel] = (
                failures_in_a_row[message.channel] + 1 if outcome == "retrying" else 0
            )
        db.session.commit()  # each result is recorded at once


def _cancel_superseded(messages: list[Message], summary: DispatchSummary) -> list[Message]:
    # After an outage several messages of one assessment can be due together: only the latest
    # (a reminder after the invitation, the last call after both) is worth sending.
    latest: dict[tuple[int, str], Message] = {}
    for message in messages:
        if message.assessment_id is None:
            continue
        key = (message.assessment_id, message.channel)
        if key not in latest or message.scheduled_for >= latest[key].scheduled_for:
            latest[key] = message
    kept = []
    for message in messages:
        if message.assessment_id is not None and (
            latest[(message.assessment_id, message.channel)] is not message
        ):
            _cancel(message, "superseded by a later message", summary)
        else:
            kept.append(message)
    return kept


def _active_links(patient_ids: set[int]) -> dict[int, PatientLink]:
    """Each patient's active link, in one query for the whole batch."""
    rows = db.session.scalars(
        db.select(PatientLink).where(
            PatientLink.patient_id.in_(patient_ids), PatientLink.revoked_at.is_(None)
        )
    )
    return {link.patient_id: link for link in rows}


def _deliver(
    message: Message,
    now: datetime,
    channel_senders: Senders,
    summary: DispatchSummary,
    links: dict[int, PatientLink],
) -> str:
    patient = message.patient
    reason = _reason_not_to_send(message, now)
    if reason is not None:
        _cancel(message, reason, summary)
        return "cancelled"
    plan, tz = trial_schedule().reminders, ZoneInfo(patient.timezone)
    if is_quiet(now, plan, tz):
        _release(message, next_allowed_instant(now, plan, tz))
        summary.deferred += 1
        return "deferred"
    address = _address(message)
    if address is None:
        _fail(message, f"no {message.channel} contact on file", summary)
        return "failed"
    try:
        url = _patient_url(patient, links.get(patient.id), now)
        provider_id = _send(message, address, url, channel_senders)
    except DeliveryError as error:
        return _record_failure(message, error, now, summary)
    message.status = MessageStatus.SENT
    message.sent_at = now
    message.provider_id = provider_id[:200]
    message.last_error = None
    summary.sent += 1
    log.info("message sent", extra=_message_event("message.sent", message))
    return "sent"


def _reason_not_to_send(message: Message, now: datetime) -> str | None:
    """Why this message must not go out now, or None; re-checked at the moment of sending."""
    patient = message.patient
    if patient.status != PatientStatus.ACTIVE:
        return f"patient {patient.status}"
    if patient.is_reminders_paused:
        return "reminders paused"
    assessment = message.assessment
    if assessment is None:
        return None
    if assessment.status in (
        AssessmentStatus.COMPLETED,
        AssessmentStatus.MISSED,
        AssessmentStatus.NOT_DONE,
    ):
        return f"assessment {assessment.status}"
    if not assessment.window.contains(now, ZoneInfo(patient.timezone)):
        return "outside the assessment window"
    return None


def _address(message: Message) -> str | None:
    contact = message.patient.contact
    if contact is None:
        return None
    return contact.email if message.channel == "email" else contact.mobile


def _patient_url(patient: Patient, link: PatientLink | None, now: datetime) -> str:
    token = token_of(link) if link is not None and link.is_valid_at(now) else None
    if token is None:
        token = issue_link(patient, now, audit.SYSTEM)  # the old one cannot be repeated
    return link_url(current_app.config["BASE_URL"] or "", token)


def _send(message: Message, address: str, url: str, channel_senders: Senders) -> str:
    rendered = render_message(message, message.patient, url)
    if message.channel == "sms":
        return channel_senders.sms.send(
            SmsMessage(reference=f"outbox-{message.id}", to=address, text=rendered.text)
        )
    sender = str(current_app.config["MAIL_SENDER"] or "pro-app@localhost")
    return channel_senders.email.send(
        EmailMessage(
            message_id=message_id_for(message.id, sender),
            to=address,
            subject=rendered.subject,
            text=rendered.text,
        )
    )


def _record_failure(
    message: Message, error: DeliveryError, now: datetime, summary: DispatchSummary
) -> str:
    if error.permanent or message.attempts >= len(BACKOFF_MINUTES):
        _fail(message, error.reason, summary)
        return "failed"
    message.status = MessageStatus.PENDING
    message.next_attempt_at = now + timedelta(minutes=BACKOFF_MINUTES[message.attempts - 1])
    message.last_error = error.reason[:500]
    summary.retrying += 1
    log.warning(
        "message not sent, will retry",
        extra=_message_event(
            "message.retry",
            message,
            reason=failure_category(error.reason),
            retry_at=message.next_attempt_at.isoformat(),
        ),
    )
    return "retrying"


def _release(message: Message, at: datetime) -> None:
    """Back to the queue without counting an attempt (quiet hours, channel paused this pass)."""
    message.status = MessageStatus.PENDING
    message.attempts = max(0, message.attempts - 1)
    message.next_attempt_at = at


def _cancel(message: Message, reason: str, summary: DispatchSummary) -> None:
    message.status = MessageStatus.CANCELLED
    message.last_error = reason
    summary.cancelled += 1


def _fail(message: Message, reason: str, summary: DispatchSummary) -> None:
    message.status = MessageStatus.FAILED
    message.last_error = reason[:500]
    summary.failed += 1
    log.warning(
        "message failed for good",
        extra=_message_event("message.failed", message, reason=failure_category(reason)),
    )


def _message_event(name: str, message: Message, **details: object) -> dict[str, object]:
    # Ids and codes only: the reason is a category, never the error's text.
    return event(
        name,
        message_id=message.id,
        kind=message.kind,
        channel=message.channel,
        attempt=message.attempts,
        **details,
    )
