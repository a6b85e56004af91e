"""What an administrator watches: the outbox, the scheduler, completion, locks, the schema.

Plain functions returning dataclasses; the page and its JSON twin only present them. Every
number comes from a fixed handful of statements (GROUP BY and one streamed read of the
assessments for completion), however many patients there are.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from alembic.script import ScriptDirectory
from sqlalchemy import ColumnElement, and_, case, func, inspect, select, text

from pro_app.database import MIGRATIONS_DIR
from pro_app.exports.outcomes import compliance_rows
from pro_app.exports.source import ExportFilter
from pro_app.extensions import db
from pro_app.models import Message, MessageStatus, SchedulerLease, StaffUser
from pro_app.services.dispatch import DispatchSummary

# The scheduler's lease row (pro_app.scheduler.LEASE_NAME; services do not import the process).
DISPATCHER_LEASE = "dispatcher"
# The scheduler is late when its last pass is older than this many intervals.
LATE_AFTER_INTERVALS = 3
RECENT_FAILURES = timedelta(hours=24)


class SchedulerState(enum.StrEnum):
    OK = "ok"
    LATE = "late"
    NEVER = "never"


def scheduler_state(
    last_run_at: datetime | None, now: datetime, interval_seconds: float
) -> SchedulerState:
    """ok, late (last pass older than three intervals) or never (no pass recorded)."""
    if last_run_at is None:
        return SchedulerState.NEVER
    if now - last_run_at > timedelta(seconds=LATE_AFTER_INTERVALS * interval_seconds):
        return SchedulerState.LATE
    return SchedulerState.OK


def last_dispatcher_run() -> datetime | None:
    """When the scheduler last finished a pass (None if never)."""
    return db.session.scalar(
        select(SchedulerLease.last_run_at).where(SchedulerLease.name == DISPATCHER_LEASE)
    )


@dataclass(frozen=True)
class MessageCounts:
    """Outbox rows of one channel and kind, by what is happening to them."""

    channel: str
    kind: str
    due: int  # pending and due now: waiting for the next pass
    planned: int  # pending, due later
    retrying: int  # pending after a temporary failure
    sending: int  # claimed by a pass
    failed: int  # failed for good, ever
    failed_last_day: int  # failed for good in the last 24 hours


@dataclass(frozen=True)
class OutboxMetrics:
    rows: list[MessageCounts]
    total: MessageCounts
    oldest_due_at: datetime | None  # the longest-waiting message that should have gone
    oldest_due_age_seconds: float | None


@dataclass(frozen=True)
class SchedulerMetrics:
    holder: str | None
    lease_expires_at: datetime | None
    last_run_at: datetime | None
    last_summary: str | None
    last_pass: DispatchSummary | None  # the summary's counts, when it could be read
    state: SchedulerState
    late_after_seconds: float


@dataclass(frozen=True)
class CompletionMetrics:
    """One time point over all arms: forms expected so far, received, still open."""

    timepoint: str
    expected: int
    completed: int
    pending: int
    rate: float | None  # percent; None while nothing is expected yet


@dataclass(frozen=True)
class DatabaseMetrics:
    dialect: str
    applied_revisions: list[str]  # empty: the schema was not made by the migrations
    latest_revisions: list[str]

    @property
    def is_up_to_date(self) -> bool:
        return sorted(self.applied_revisions) == sorted(self.latest_revisions)


@dataclass(frozen=True)
class Metrics:
    as_of: datetime
    outbox: OutboxMetrics
    scheduler: SchedulerMetrics
    completion: list[CompletionMetrics]
    locked_accounts: int
    database: DatabaseMetrics


def collect_metrics(
    now: datetime, *, timezone: str, interval_seconds: float, claim_seconds: float
) -> Metrics:
    """Every figure of the metrics page, at `now` (completion as of the local date there)."""
    return Metrics(
        as_of=now,
        outbox=outbox_metrics(now, claim_seconds),
        scheduler=scheduler_metrics(now, interval_seconds),
        completion=completion_metrics(now.astimezone(ZoneInfo(timezone)).date()),
        locked_accounts=locked_accounts(now),
        database=database_metrics(),
    )


def _count(condition: ColumnElement[bool]) -> Any:
    return func.sum(case((condition, 1), else_=0))


def outbox_metrics(now: datetime, claim_seconds: float) -> OutboxMetrics:
    """Pending, sending and failed messages by channel and kind, in one GROUP BY."""
    pending = Message.status == MessageStatus.PENDING
    is_due = Message.next_attempt_at <= now
    # A claim stamps next_attempt_at with the claim instant plus the claim lease, and failing
    # leaves it there: a row failed in the last day was claimed after `since`.
    since = now - RECENT_FAILURES + timedelta(seconds=claim_seconds)
    failed = Message.status == MessageStatus.FAILED
    # A row still "sending" after its claim lease belongs to a pass that died: it waits too.
    waiting = and_(Message.status.in_([MessageStatus.PENDING, MessageStatus.SENDING]), is_due)
    statement = (
        select(
            Message.channel,
            Message.kind,
            _count(and_(pending, is_due)),
            _count(and_(pending, Message.next_attempt_at > now)),
            _count(and_(pending, Message.attempts > 0, Message.last_error.is_not(None))),
            _count(Message.status == MessageStatus.SENDING),
            _count(failed),
            _count(and_(failed, Message.next_attempt_at >= since)),
            func.min(case((waiting, Message.next_attempt_at))),
        )
        .where(
            Message.status.in_([MessageStatus.PENDING, MessageStatus.SENDING, MessageStatus.FAILED])
        )
        .group_by(Message.channel, Message.kind)
    )
    rows: list[MessageCounts] = []
    oldest: datetime | None = None
    for channel, kind, *counts, oldest_here in db.session.execute(statement):
        rows.append(MessageCounts(channel, kind, *(int(count or 0) for count in counts)))
        if oldest_here is not None and (oldest is None or oldest_here < oldest):
            oldest = oldest_here
    rows.sort(key=lambda row: (row.channel, _kind_order(row.kind)))
    total = MessageCounts(
        "",
        "",
        *(sum(getattr(row, name) for row in rows) for name in _COUNT_NAMES),
    )
    age = None if oldest is None else max(0.0, (now - oldest).total_seconds())
    return OutboxMetrics(rows, total, oldest, age)


_COUNT_NAMES = ("due", "planned", "retrying", "sending", "failed", "failed_last_day")


def _kind_order(kind: str) -> tuple[int, str]:
    """Invitation, reminders in order, last call, link, anything else."""
    if kind == "invitation":
        return (0, "")
    if kind.startswith("reminder_"):
        return (1, kind.removeprefix("reminder_").zfill(4))
    return ({"last_call": 2, "link": 3}.get(kind, 4), kind)


def scheduler_metrics(now: datetime, interval_seconds: float) -> SchedulerMetrics:
    """The lease row: who holds it, the last pass and its summary, and whether it is late."""
    lease = db.session.get(SchedulerLease, DISPATCHER_LEASE)
    last_run_at = lease.last_run_at if lease is not None else None
    summary = lease.last_summary if lease is not None else None
    return SchedulerMetrics(
        holder=lease.holder if lease is not None else None,
        lease_expires_at=lease.expires_at if lease is not None else None,
        last_run_at=last_run_at,
        last_summary=summary,
        last_pass=DispatchSummary.from_line(summary) if summary else None,
        state=scheduler_state(last_run_at, now, interval_seconds),
        late_after_seconds=LATE_AFTER_INTERVALS * interval_seconds,
    )


def completion_metrics(as_of: date) -> list[CompletionMetrics]:
    """Per time point over all arms and sites: the analysts' compliance table, summed up."""
    return [
        CompletionMetrics(row.timepoint, row.expected, row.received, row.pending, row.rate)
        for row in compliance_rows(None, ExportFilter(), as_of)
        if row.arm is None
    ]


def locked_accounts(now: datetime) -> int:
    """Staff accounts locked out by failed sign-ins right now."""
    count = db.session.scalar(
        select(func.count()).select_from(StaffUser).where(StaffUser.locked_until > now)
    )
    return int(count or 0)


def database_metrics() -> DatabaseMetrics:
    """The database kind, the migration it is at and the newest one this code knows."""
    connection = db.session.connection()
    applied: list[str] = []
    if inspect(connection).has_table("alembic_version"):
        applied = list(db.session.scalars(text("SELECT version_num FROM alembic_version")))
    return DatabaseMetrics(connection.dialect.name, applied, list(latest_revisions()))


@cache
def latest_revisions() -> tuple[str, ...]:
    """The heads of the migrations shipped with this code (read once per process)."""
    return tuple(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads())
