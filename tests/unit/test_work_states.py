"""Where an assessment stands on a day: upcoming, open, overdue, missed, due today."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from pro_app.config import PROJECT_ROOT
from pro_app.protocol import work_states as ws
from pro_app.protocol.schedule import load_schedule
from pro_app.protocol.windows import AssessmentWindow

WINDOW = AssessmentWindow("month3", date(2025, 4, 1), date(2025, 3, 18), date(2025, 4, 15))
REMINDERS = ws.ReminderDays(
    frozenset({date(2025, 3, 21), date(2025, 3, 25), date(2025, 4, 13)}),
    "reminder_2",
    date(2025, 3, 25),
)


@pytest.mark.parametrize(
    ("status", "today", "state", "due"),
    [
        ("scheduled", date(2025, 3, 17), ws.WorkState.UPCOMING, False),
        ("scheduled", date(2025, 3, 18), ws.WorkState.OPEN, True),  # opens today
        ("open", date(2025, 3, 19), ws.WorkState.OPEN, False),
        ("in_progress", date(2025, 3, 21), ws.WorkState.OPEN, True),  # reminder today
        ("open", date(2025, 3, 25), ws.WorkState.OPEN, True),  # last reminder not yet sent
        ("open", date(2025, 3, 26), ws.WorkState.OVERDUE, False),
        ("open", date(2025, 4, 13), ws.WorkState.OVERDUE, True),  # last call today
        ("open", date(2025, 4, 16), ws.WorkState.MISSED, False),  # before the pass marks it
        ("missed", date(2025, 4, 16), ws.WorkState.MISSED, False),
        ("completed", date(2025, 3, 20), ws.WorkState.COMPLETED, False),
        ("not_done", date(2025, 3, 20), ws.WorkState.NOT_DONE, False),
    ],
)
def test_classify(status: str, today: date, state: ws.WorkState, due: bool) -> None:
    found = ws.classify(status, WINDOW, today, REMINDERS)
    assert found == state
    assert ws.is_due_today(found, WINDOW, today, REMINDERS) == due


def test_overdue_as_soon_as_the_last_reminder_is_sent() -> None:
    on_the_day = date(2025, 3, 25)
    assert ws.classify("open", WINDOW, on_the_day, REMINDERS, {"reminder_1"}) == "open"
    assert ws.classify("open", WINDOW, on_the_day, REMINDERS, {"reminder_2"}) == "overdue"


def test_reminder_days_of_the_trial_schedule() -> None:
    schedule = load_schedule(PROJECT_ROOT / "questionnaires" / "schedule.yaml")
    window = AssessmentWindow("month3", date(2025, 4, 1), date(2025, 3, 18), date(2025, 4, 15))
    found = ws.reminder_days(schedule, window, ZoneInfo("Europe/Rome"))
    # Reminders 3 and 7 days after opening, last call 2 days before closing.
    assert found.days == {date(2025, 3, 21), date(2025, 3, 25), date(2025, 4, 13)}
    assert found.last_kind == "reminder_2"
    assert found.last_on == date(2025, 3, 25)


def test_a_short_window_counts_its_last_call_as_the_last_reminder() -> None:
    schedule = load_schedule(PROJECT_ROOT / "questionnaires" / "schedule.yaml")
    tz = ZoneInfo("Europe/Rome")
    window = AssessmentWindow("baseline", date(2025, 3, 1), date(2025, 3, 6), date(2025, 3, 10))
    found = ws.reminder_days(schedule, window, tz)
    assert found.last_kind == "last_call"  # day 3 after opening falls after the last call
    assert found.last_on == date(2025, 3, 8)
    assert ws.classify("open", window, date(2025, 3, 9), found) == ws.WorkState.OVERDUE


def test_a_window_too_short_for_reminders_stays_open_until_it_closes() -> None:
    schedule = load_schedule(PROJECT_ROOT / "questionnaires" / "schedule.yaml")
    window = AssessmentWindow("baseline", date(2025, 3, 1), date(2025, 3, 6), date(2025, 3, 8))
    found = ws.reminder_days(schedule, window, ZoneInfo("Europe/Rome"))
    assert found == ws.ReminderDays(frozenset(), None, None)
    assert ws.classify("open", window, date(2025, 3, 8), found) == ws.WorkState.OPEN
