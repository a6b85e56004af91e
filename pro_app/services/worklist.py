"""The worklist: each assessment of the user's patients, classified by where it stands today.

Assessment states are stored, but the time-driven ones (open, missed) are only written by the
dispatcher pass; the worklist therefore decides from the window dates, so that it is right even
between two passes. The database does the deciding, counting, sorting and paging, so that a page
costs the same few statements and holds only its own rows in memory, whatever the number of
patients. What SQL cannot know, each time zone's date today and when the schedule's reminders
fall, comes from the protocol's pure functions (protocol/work_states.py), run once per distinct
window open today and handed to the query as a small table. The patient page runs the same
functions on one patient; a test checks that both give every assessment the same state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Date,
    Subquery,
    and_,
    case,
    false,
    func,
    literal,
    or_,
    tuple_,
)

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
from pro_app.models.assessment import FINAL_STATUSES
from pro_app.protocol.windows import AssessmentWindow
from pro_app.protocol.work_states import COUNTED, WorkFilter, WorkState, matches, reminder_days
from pro_app.protocol.work_states import classify as classify  # re-exported: the patient page
from pro_app.protocol.work_states import is_due_today as is_due_today  # re-exported
from pro_app.services.definitions import trial_schedule
from pro_app.services.failed_messages import count_failed
from pro_app.services.worklist_query import PAGE_SIZE as PAGE_SIZE  # re-exported: the view
from pro_app.services.worklist_query import SEARCH_MAX_LENGTH as SEARCH_MAX_LENGTH  # re-exported
from pro_app.services.worklist_query import WorklistQuery as WorklistQuery  # re-exported
from pro_app.services.worklist_query import escape_like as escape_like  # re-exported: tests
from pro_app.services.worklist_query import filtered

# Most urgent first when everything is listed.
_RANK = {
    WorkState.OVERDUE: 0,
    WorkState.OPEN: 1,
    WorkState.UPCOMING: 2,
    WorkState.MISSED: 3,
    WorkState.NOT_DONE: 4,
    WorkState.COMPLETED: 5,
}
# Stored statuses that decide the state whatever the date (the state has the status's name).
_STORED_FINAL = tuple(WorkState(status.value) for status in FINAL_STATUSES)
_TO_DO = (WorkState.OPEN, WorkState.OVERDUE)
# Work still ahead is listed by closing date, soonest first; finished work most recent first.
_BY_CLOSING_DATE = (WorkState.OPEN, WorkState.OVERDUE, WorkState.UPCOMING)


@dataclass(frozen=True)
class Classified:
    """One assessment of the page, with its state today."""

    assessment_id: int
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


def _local_today(user: StaffUser, query: WorklistQuery, now: datetime) -> ColumnElement[date]:
    """Each patient's date today in their own time zone, as an SQL expression (1 statement)."""
    zones = db.session.scalars(filtered(db.select(Patient.timezone).distinct(), user, query)).all()
    # A patient enrolled meanwhile in a new time zone gets the server's date, not no date.
    fallback = literal(now.astimezone(ZoneInfo(trial_schedule().timezone)).date(), Date)
    if not zones:
        return fallback
    return case(
        {zone: literal(now.astimezone(ZoneInfo(zone)).date(), Date) for zone in zones},
        value=Patient.timezone,
        else_=fallback,
    )


# A window as the reminder plan knows it: the same dates in the same time zone, the same plan.
_WINDOW_KEY = (
    Assessment.timepoint,
    Assessment.target_on,
    Assessment.window_opens_on,
    Assessment.window_closes_on,
    Patient.timezone,
)
WindowKey = tuple[str, date, date, date, str]


@dataclass
class _OpenWindows:
    """The windows open today, by what the schedule's reminders say of them today."""

    late: list[WindowKey] = field(default_factory=list)  # past their last reminder's day
    # Overdue as soon as this reminder has gone out (the last one, not yet past its day).
    by_last_kind: dict[str, list[WindowKey]] = field(default_factory=dict)
    reminding: list[WindowKey] = field(default_factory=list)  # a reminder is planned today


def _open_windows(
    user: StaffUser, query: WorklistQuery, now: datetime, today: ColumnElement[date]
) -> _OpenWindows:
    """The distinct windows open today, sorted by their reminder plan (1 statement)."""
    windows = db.session.execute(
        filtered(
            db.select(*_WINDOW_KEY)
            .distinct()
            .join(Patient, Patient.id == Assessment.patient_id)
            .where(
                Assessment.status.not_in(FINAL_STATUSES),
                Assessment.window_opens_on <= today,
                Assessment.window_closes_on >= today,
            ),
            user,
            query,
        )
    ).all()
    schedule = trial_schedule()
    found = _OpenWindows()
    for row in windows:
        key: WindowKey = tuple(row)
        timepoint, target_on, opens_on, closes_on, zone = key
        tz = ZoneInfo(zone)
        window = AssessmentWindow(timepoint, target_on, opens_on, closes_on)
        reminders = reminder_days(schedule, window, tz)
        if reminders.last_on is None or reminders.last_kind is None:
            continue  # no reminder: never overdue, never reminded
        local_today = now.astimezone(tz).date()
        if local_today > reminders.last_on:
            found.late.append(key)
        else:
            found.by_last_kind.setdefault(reminders.last_kind, []).append(key)
        if local_today in reminders.days:
            found.reminding.append(key)
    return found


def _among(keys: list[WindowKey]) -> ColumnElement[bool]:
    return tuple_(*_WINDOW_KEY).in_(keys) if keys else false()


def _sent_reminders(user: StaffUser, query: WorklistQuery, windows: _OpenWindows) -> Subquery:
    """For the assessments whose overdue state hangs on a reminder having gone out: whether
    it has, one 0/1 column per reminder kind (sent_0, sent_1, ...)."""
    waiting = [key for keys in windows.by_last_kind.values() for key in keys]
    assessments = filtered(
        db.select(Assessment.id)
        .join(Patient, Patient.id == Assessment.patient_id)
        .where(_among(waiting), Assessment.status.not_in(FINAL_STATUSES)),
        user,
        query,
    )
    # Only the assessment in WHERE: any other condition there leads SQLite to scan the outbox.
    return (
        db.select(
            Message.assessment_id,
            *(
                func.max(
                    case(
                        (and_(Message.kind == kind, Message.status == MessageStatus.SENT), 1),
                        else_=0,
                    )
                ).label(f"sent_{number}")
                for number, kind in enumerate(windows.by_last_kind)
            ),
        )
        .where(Message.assessment_id.in_(assessments))
        .group_by(Message.assessment_id)
        .subquery("sent_reminder")
    )


def _classified(user: StaffUser, query: WorklistQuery, now: datetime) -> Subquery:
    """Every assessment the site and search filters keep, with its state and "due today"
    decided by the database (2 statements to prepare it)."""
    today = _local_today(user, query, now)
    windows = _open_windows(user, query, now, today)
    opens_on, closes_on = Assessment.window_opens_on, Assessment.window_closes_on
    # Overdue from the day after the last reminder, or as soon as it has gone out. Joined, not
    # looked up per row: PostgreSQL would price a lookup per assessment and compile the query.
    kinds = list(windows.by_last_kind)
    sent = _sent_reminders(user, query, windows) if kinds else None
    overdue = or_(
        _among(windows.late),
        *(
            and_(_among(windows.by_last_kind[kind]), sent.c[f"sent_{number}"] == 1)
            for number, kind in enumerate(kinds)
            if sent is not None
        ),
    )
    state = case(
        *((Assessment.status == state.value, state.value) for state in _STORED_FINAL),
        (opens_on > today, WorkState.UPCOMING.value),
        (closes_on < today, WorkState.MISSED.value),
        (overdue, WorkState.OVERDUE.value),
        else_=WorkState.OPEN.value,
    )
    due_today = case(
        (Assessment.status.in_(FINAL_STATUSES), 0),
        (or_(opens_on > today, closes_on < today), 0),
        (opens_on == today, 1),
        (_among(windows.reminding), 1),
        else_=0,
    )
    statement = db.select(
        Assessment.id.label("assessment_id"),
        Assessment.timepoint,
        closes_on.label("closes_on"),
        Patient.study_code,
        state.label("state"),
        due_today.label("due_today"),
    ).join(Patient, Patient.id == Assessment.patient_id)
    if sent is not None:
        statement = statement.outerjoin(sent, sent.c.assessment_id == Assessment.id)
    return filtered(statement, user, query).subquery("classified")


def _in_section(classified: Subquery, section: WorkFilter) -> ColumnElement[bool]:
    """The SQL form of work_states.matches()."""
    state = classified.c.state
    if section == WorkFilter.ALL:
        return state.is_not(None)
    if section == WorkFilter.DUE_TODAY:
        return classified.c.due_today == 1
    if section == WorkFilter.OPEN:
        return state.in_([s.value for s in _TO_DO])
    return state == section.value


def _count(
    classified: Subquery, query: WorklistQuery
) -> tuple[dict[str, Counter[str]], Counter[str], int]:
    """Counts per time point and section, their totals, and the rows of the chosen section
    (1 statement)."""
    c = classified.c
    groups = db.session.execute(
        db.select(c.timepoint, c.state, c.due_today, func.count())
        .group_by(c.timepoint, c.state, c.due_today)
        .order_by(c.timepoint)
    ).all()
    counts: dict[str, Counter[str]] = {}
    totals: Counter[str] = Counter()
    chosen = 0
    for timepoint, state_value, due_value, number in groups:
        state, due_today = WorkState(state_value), bool(due_value)
        counter = counts.setdefault(timepoint, Counter())
        for section in COUNTED:
            if matches(section, state, due_today):
                counter[section.value] += number
                totals[section.value] += number
        if (query.timepoint is None or timepoint == query.timepoint) and matches(
            query.section, state, due_today
        ):
            chosen += number
    return counts, totals, chosen


def _page(classified: Subquery, query: WorklistQuery) -> list[Classified]:
    """The chosen section's assessments on this page, most urgent first (1 statement)."""
    c = classified.c
    study_code: ColumnElement[str] = c.study_code
    if db.engine.dialect.name == "postgresql":
        study_code = study_code.collate("C")  # code-point order, whatever the database's locale
    statement = db.select(c.assessment_id, c.state, c.due_today).where(
        _in_section(classified, query.section)
    )
    if query.timepoint is not None:
        statement = statement.where(c.timepoint == query.timepoint)
    ahead = [state.value for state in _BY_CLOSING_DATE]
    rows = db.session.execute(
        statement.order_by(
            case({state.value: rank for state, rank in _RANK.items()}, value=c.state),
            case((c.state.in_(ahead), c.closes_on)),
            case((c.state.not_in(ahead), c.closes_on)).desc(),
            study_code,
            c.assessment_id,
        )
        .limit(PAGE_SIZE)
        .offset((query.page - 1) * PAGE_SIZE)
    ).all()
    return [Classified(row[0], WorkState(row[1]), bool(row[2])) for row in rows]


def build_worklist(user: StaffUser, query: WorklistQuery, now: datetime) -> Worklist:
    """The page of rows, the counts per time point and the failed-message count (at most 7
    statements, whatever the number of patients)."""
    classified = _classified(user, query, now)
    counts, totals, total = _count(classified, query)
    has_rows = query.section != WorkFilter.FAILED and (query.page - 1) * PAGE_SIZE < total
    return Worklist(
        rows=load_rows(_page(classified, query), now) if has_rows else [],
        total=total,
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
    # By patient only: a status condition would lead the planner to scan every sent message.
    messages = db.session.scalars(
        db.select(Message)
        .where(Message.patient_id.in_({row.patient.id for row in rows}))
        .order_by(Message.scheduled_for, Message.id)
    ).all()
    by_patient: dict[int, list[Message]] = {}
    for message in messages:
        if _has_happened(message, now):
            by_patient.setdefault(message.patient_id, []).append(message)
    for row in rows:
        tz = ZoneInfo(row.patient.timezone)
        window = row.assessment.window
        for message in by_patient.get(row.patient.id, ()):
            if message.assessment_id == row.assessment.id or (
                message.assessment_id is None
                and window.opens_on
                <= message.scheduled_for.astimezone(tz).date()
                <= window.closes_on
            ):
                row.last_message = message


def _has_happened(message: Message, now: datetime) -> bool:
    """Sent, failed or being tried; future and cancelled messages say nothing yet."""
    if message.status == MessageStatus.PENDING:
        return message.scheduled_for <= now
    return message.status in (MessageStatus.SENT, MessageStatus.FAILED, MessageStatus.SENDING)
