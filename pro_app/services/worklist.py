"""The worklist: each assessment of the user's patients, classified by where it stands today.

Assessment states are stored, but the time-driven ones (open, missed) are only written by the
dispatcher pass; the worklist therefore decides from the window dates (protocol/work_states.py),
so that it is right even between two passes. Every function runs a fixed number of statements,
whatever the number of patients.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, func, or_

from pro_app.extensions import db
from pro_app.models import (
    Assessment,
    Message,
    MessageStatus,
    Patient,
    PatientContact,
    Site,
    StaffUser,
)
from pro_app.models.assessment import ANSWERABLE_STATUSES
from pro_app.protocol.reminders import INVITATION
from pro_app.protocol.windows import AssessmentWindow
from pro_app.protocol.work_states import (
    COUNTED,
    ReminderDays,
    WorkFilter,
    WorkState,
    classify,
    is_due_today,
    matches,
    reminder_days,
)
from pro_app.services.definitions import trial_schedule
from pro_app.services.site_scope import scope_patients

PAGE_SIZE = 50
SEARCH_MAX_LENGTH = 40


# Most urgent first when everything is listed.
_RANK = {
    WorkState.OVERDUE: 0,
    WorkState.OPEN: 1,
    WorkState.UPCOMING: 2,
    WorkState.MISSED: 3,
    WorkState.NOT_DONE: 4,
    WorkState.COMPLETED: 5,
}


@dataclass(frozen=True)
class WorklistQuery:
    """What the user asked for; the search is plain text, matched anywhere in the study code."""

    section: WorkFilter = WorkFilter.OPEN
    timepoint: str | None = None
    site_id: int | None = None
    search: str = ""
    page: int = 1


@dataclass(frozen=True)
class Classified:
    assessment_id: int
    patient_id: int
    study_code: str
    timepoint: str
    closes_on: date
    state: WorkState
    due_today: bool


@dataclass
class WorklistRow:
    """One line of the worklist, with what it needs to show and act."""

    assessment: Assessment
    patient: Patient
    site: Site
    preferred_channel: str | None
    state: WorkState
    due_today: bool
    last_message: Message | None = None


@dataclass
class Worklist:
    rows: list[WorklistRow]
    total: int
    counts: dict[str, Counter[str]]  # time point → section → count
    totals: Counter[str] = field(default_factory=Counter)
    failed_count: int = 0


def escape_like(text: str) -> str:
    """The text with LIKE wildcards escaped, so that '%' or '_' match only themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered(statement: Select[Any], user: StaffUser, query: WorklistQuery) -> Select[Any]:
    statement = scope_patients(statement, user)
    if user.sees_all_sites and query.site_id is not None:
        statement = statement.where(Patient.site_id == query.site_id)
    search = query.search.strip()[:SEARCH_MAX_LENGTH]
    if search:
        statement = statement.where(
            Patient.study_code.ilike(f"%{escape_like(search)}%", escape="\\")
        )
    return statement


def classify_all(user: StaffUser, query: WorklistQuery, now: datetime) -> list[Classified]:
    """Every assessment the user may see that the site and search filters keep (2 statements)."""
    rows = db.session.execute(
        _filtered(
            db.select(
                Assessment.id,
                Assessment.patient_id,
                Assessment.timepoint,
                Assessment.status,
                Assessment.target_on,
                Assessment.window_opens_on,
                Assessment.window_closes_on,
                Patient.study_code,
                Patient.timezone,
            ).join(Patient, Patient.id == Assessment.patient_id),
            user,
            query,
        )
    ).all()
    sent = _sent_reminders(user, query)
    schedule = trial_schedule()
    # Many patients share a window (same dates): plan each window once per request.
    planned: dict[tuple[AssessmentWindow, str], ReminderDays] = {}
    classified = []
    for (assessment_id, patient_id, timepoint, status, target_on, opens_on, closes_on,
         study_code, timezone) in rows:  # fmt: skip
        window = AssessmentWindow(timepoint, target_on, opens_on, closes_on)
        key = (window, timezone)
        if key not in planned:
            planned[key] = reminder_days(schedule, window, ZoneInfo(timezone))
        reminders = planned[key]
        today = now.astimezone(ZoneInfo(timezone)).date()
        state = classify(status, window, today, reminders, sent.get(assessment_id, ()))
        classified.append(
            Classified(
                assessment_id,
                patient_id,
                study_code,
                timepoint,
                closes_on,
                state,
                is_due_today(state, window, today, reminders),
            )
        )
    return classified


def _sent_reminders(user: StaffUser, query: WorklistQuery) -> dict[int, set[str]]:
    # Overdue starts when the last reminder has gone out, even before its day is over.
    pairs = db.session.execute(
        _filtered(
            db.select(Message.assessment_id, Message.kind)
            .join(Patient, Patient.id == Message.patient_id)
            .join(Assessment, Assessment.id == Message.assessment_id)
            .where(
                Message.status == MessageStatus.SENT,
                Message.kind != INVITATION,
                Assessment.status.in_(ANSWERABLE_STATUSES),
            ),
            user,
            query,
        )
    ).all()
    sent: dict[int, set[str]] = {}
    for assessment_id, kind in pairs:
        sent.setdefault(assessment_id, set()).add(kind)
    return sent


def count_by_timepoint(classified: Sequence[Classified]) -> dict[str, Counter[str]]:
    """Time point → section → how many assessments are in it."""
    counts: dict[str, Counter[str]] = {}
    for item in classified:
        counter = counts.setdefault(item.timepoint, Counter())
        for section in COUNTED:
            if matches(section, item.state, item.due_today):
                counter[section.value] += 1
    return counts


def _sort_key(item: Classified) -> tuple[int, int, str]:
    # Open work by the closing date (soonest first); finished work most recent first.
    days = item.closes_on.toordinal()
    if item.state not in (WorkState.OPEN, WorkState.OVERDUE, WorkState.UPCOMING):
        days = -days
    return (_RANK[item.state], days, item.study_code)


def build_worklist(user: StaffUser, query: WorklistQuery, now: datetime) -> Worklist:
    """The page of rows, the counts per time point and the failed-message count."""
    classified = classify_all(user, query, now)
    counts = count_by_timepoint(classified)
    totals: Counter[str] = Counter()
    for counter in counts.values():
        totals.update(counter)
    chosen = sorted(
        (
            item
            for item in classified
            if (query.timepoint is None or item.timepoint == query.timepoint)
            and matches(query.section, item.state, item.due_today)
        ),
        key=_sort_key,
    )
    start = (query.page - 1) * PAGE_SIZE
    page = chosen[start : start + PAGE_SIZE] if query.section != WorkFilter.FAILED else []
    return Worklist(
        rows=load_rows(page, now),
        total=len(chosen),
        counts=counts,
        totals=totals,
        failed_count=count_failed(user, query),
    )


def load_rows(items: Sequence[Classified], now: datetime) -> list[WorklistRow]:
    """The rows for these classified assessments, in their order (2 statements)."""
    if not items:
        return []
    found = {
        assessment.id: (assessment, patient, site, channel)
        for assessment, patient, site, channel in db.session.execute(
            db.select(Assessment, Patient, Site, PatientContact.preferred_channel)
            .join(Patient, Patient.id == Assessment.patient_id)
            .join(Site, Site.id == Patient.site_id)
            .outerjoin(PatientContact, PatientContact.patient_id == Patient.id)
            .where(Assessment.id.in_([item.assessment_id for item in items]))
        ).all()
    }
    rows = [
        WorklistRow(*found[item.assessment_id], item.state, item.due_today)
        for item in items
        if item.assessment_id in found
    ]
    _attach_last_messages(rows, now)
    return rows


def _attach_last_messages(rows: list[WorklistRow], now: datetime) -> None:
    # What happened last: sent, failed, being tried; future and cancelled rows say nothing yet.
    messages = db.session.scalars(
        db.select(Message)
        .where(
            Message.patient_id.in_({row.patient.id for row in rows}),
            or_(
                Message.status.in_(
                    [MessageStatus.SENT, MessageStatus.FAILED, MessageStatus.SENDING]
                ),
                and_(Message.status == MessageStatus.PENDING, Message.scheduled_for <= now),
            ),
        )
        .order_by(Message.scheduled_for, Message.id)
    ).all()
    for row in rows:
        tz = ZoneInfo(row.patient.timezone)
        window = row.assessment.window
        for message in messages:
            if message.patient_id != row.patient.id:
                continue
            if message.assessment_id == row.assessment.id or (
                message.assessment_id is None
                and window.opens_on
                <= message.scheduled_for.astimezone(tz).date()
                <= window.closes_on
            ):
                row.last_message = message


def _failed_statement(user: StaffUser, query: WorklistQuery, *columns: Any) -> Select[Any]:
    statement = _filtered(
        db.select(*columns)
        .select_from(Message)
        .join(Patient, Patient.id == Message.patient_id)
        .join(Site, Site.id == Patient.site_id)
        .outerjoin(Assessment, Assessment.id == Message.assessment_id)
        .outerjoin(PatientContact, PatientContact.patient_id == Patient.id)
        .where(Message.status == MessageStatus.FAILED),
        user,
        query,
    )
    if query.timepoint is not None:
        statement = statement.where(Assessment.timepoint == query.timepoint)
    return statement


def count_failed(user: StaffUser, query: WorklistQuery) -> int:
    """How many messages failed for good among the user's patients (1 statement)."""
    return db.session.scalar(_failed_statement(user, query, func.count(Message.id))) or 0


@dataclass(frozen=True)
class FailedMessage:
    message: Message
    patient: Patient
    site: Site
    timepoint: str | None
    preferred_channel: str | None


def failed_messages(user: StaffUser, query: WorklistQuery) -> list[FailedMessage]:
    """One page of failed messages, newest first (1 statement)."""
    rows = db.session.execute(
        _failed_statement(
            user,
            query,
            Message,
            Patient,
            Site,
            Assessment.timepoint,
            PatientContact.preferred_channel,
        )
        .order_by(Message.scheduled_for.desc(), Message.id.desc())
        .limit(PAGE_SIZE)
        .offset((query.page - 1) * PAGE_SIZE)
    ).all()
    return [FailedMessage(*row) for row in rows]
