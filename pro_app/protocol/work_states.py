"""Where an assessment stands on a given day, for the staff worklist (pure; no Flask).

The stored status says completed, missed or not done; for the rest the window's dates decide
(open, overdue once the last reminder has gone out or its day has passed, missed once closed),
so that the answer is right even between two dispatcher passes.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from pro_app.protocol.model import Schedule
from pro_app.protocol.reminders import INVITATION, LAST_CALL, plan_messages
from pro_app.protocol.windows import AssessmentWindow


class WorkState(enum.StrEnum):
    """Where an assessment stands today (overdue is open and past its last reminder)."""

    UPCOMING = "upcoming"
    OPEN = "open"
    OVERDUE = "overdue"
    MISSED = "missed"
    COMPLETED = "completed"
    NOT_DONE = "not_done"


class WorkFilter(enum.StrEnum):
    """The worklist's sections; "open" includes the overdue, "due today" is a part of open."""

    DUE_TODAY = "due_today"
    OPEN = "open"
    OVERDUE = "overdue"
    MISSED = "missed"
    COMPLETED = "completed"
    NOT_DONE = "not_done"
    UPCOMING = "upcoming"
    FAILED = "failed"  # messages that failed, not assessments
    ALL = "all"


# The columns of the counts table, in order.
COUNTED = (
    WorkFilter.DUE_TODAY,
    WorkFilter.OPEN,
    WorkFilter.OVERDUE,
    WorkFilter.MISSED,
    WorkFilter.COMPLETED,
    WorkFilter.NOT_DONE,
    WorkFilter.UPCOMING,
)
# Stored assessment statuses that decide the state whatever the date.
_STORED_FINAL = {
    "completed": WorkState.COMPLETED,
    "missed": WorkState.MISSED,
    "not_done": WorkState.NOT_DONE,
}


@dataclass(frozen=True)
class ReminderDays:
    """The local days on which the plan sends a reminder or last call, and the last reminder."""

    days: frozenset[date]
    last_kind: str | None
    last_on: date | None


def reminder_days(schedule: Schedule, window: AssessmentWindow, tz: ZoneInfo) -> ReminderDays:
    """When the schedule reminds about this window (the last call counts when no reminder fits)."""
    later = [m for m in plan_messages(schedule, window, tz) if m.kind != INVITATION]
    days = frozenset(m.send_at.astimezone(tz).date() for m in later)
    reminders = [m for m in later if m.kind != LAST_CALL] or later
    if not reminders:
        return ReminderDays(days, None, None)
    last = reminders[-1]
    return ReminderDays(days, last.kind, last.send_at.astimezone(tz).date())


def classify(
    status: str,
    window: AssessmentWindow,
    today: date,
    reminders: ReminderDays,
    sent_kinds: Iterable[str] = (),
) -> WorkState:
    """The state of an assessment on a local day, from its stored status and its window."""
    if status in _STORED_FINAL:
        return _STORED_FINAL[status]
    if today < window.opens_on:
        return WorkState.UPCOMING
    if today > window.closes_on:
        return WorkState.MISSED
    if reminders.last_on is not None and (
        today > reminders.last_on or reminders.last_kind in set(sent_kinds)
    ):
        return WorkState.OVERDUE
    return WorkState.OPEN


def is_due_today(
    state: WorkState, window: AssessmentWindow, today: date, reminders: ReminderDays
) -> bool:
    """Still to do, and its window opened today or a reminder or last call is planned today."""
    if state not in (WorkState.OPEN, WorkState.OVERDUE):
        return False
    return window.opens_on == today or today in reminders.days


def matches(filter_: WorkFilter, state: WorkState, due_today: bool) -> bool:
    """Whether an assessment in this state belongs to a section of the worklist."""
    if filter_ == WorkFilter.ALL:
        return True
    if filter_ == WorkFilter.DUE_TODAY:
        return due_today
    if filter_ == WorkFilter.OPEN:
        return state in (WorkState.OPEN, WorkState.OVERDUE)
    return filter_.value == state.value
