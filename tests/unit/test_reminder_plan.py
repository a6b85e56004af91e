"""Planned invitations, reminders and last calls: local send times, quiet hours, window limits."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pro_app.protocol.reminders import (
    PlannedMessage,
    is_quiet,
    next_allowed_instant,
    plan_messages,
)
from pro_app.protocol.schedule import load_schedule
from pro_app.protocol.windows import (
    AssessmentWindow,
    local_instant,
    participation_ends_at,
    plan_windows,
)

SCHEDULE = load_schedule(Path(__file__).resolve().parents[2] / "questionnaires" / "schedule.yaml")
PLAN = SCHEDULE.reminders
ROME = ZoneInfo("Europe/Rome")
ZONES = [
    "Europe/Rome",
    "Europe/London",
    "America/New_York",
    "America/Santiago",  # southern hemisphere, changes clocks at midnight
    "Australia/Sydney",
    "Asia/Kolkata",  # half-hour offset, no daylight saving
    "Pacific/Chatham",  # +12:45 / +13:45
]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def rome(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ROME)


def window(code: str, randomized_on: date, enrolled_on: date | None = None) -> AssessmentWindow:
    windows = plan_windows(SCHEDULE, randomized_on, enrolled_on or randomized_on)
    return next(w for w in windows if w.timepoint == code)


def summary(messages: list[PlannedMessage]) -> list[tuple[str, datetime]]:
    return [(message.kind, message.send_at) for message in messages]


def test_month3_plan_follows_the_protocol() -> None:
    month3 = window("month3", date(2025, 1, 15))  # days 77..105: 2 April .. 30 April, CEST

    assert summary(plan_messages(SCHEDULE, month3, ROME)) == [
        ("invitation", utc("2025-04-02T08:00")),
        ("reminder_1", utc("2025-04-05T08:00")),
        ("reminder_2", utc("2025-04-09T08:00")),
        ("last_call", utc("2025-04-28T08:00")),
    ]


def test_send_times_stay_at_10_local_across_the_march_change() -> None:
    month3 = window("month3", date(2025, 1, 2))  # 20 March .. 17 April; clocks change 30 March

    messages = plan_messages(SCHEDULE, month3, ROME)

    assert summary(messages) == [
        ("invitation", utc("2025-03-20T09:00")),  # CET, UTC+1
        ("reminder_1", utc("2025-03-23T09:00")),
        ("reminder_2", utc("2025-03-27T09:00")),
        ("last_call", utc("2025-04-15T08:00")),  # CEST, UTC+2
    ]
    assert {message.send_at.astimezone(ROME).time() for message in messages} == {time(10, 0)}


def test_send_times_stay_at_10_local_across_the_october_change() -> None:
    month3 = window("month3", date(2025, 8, 4))  # 20 October .. 17 November; change 26 October

    assert summary(plan_messages(SCHEDULE, month3, ROME)) == [
        ("invitation", utc("2025-10-20T08:00")),  # CEST
        ("reminder_1", utc("2025-10-23T08:00")),
        ("reminder_2", utc("2025-10-27T09:00")),  # CET
        ("last_call", utc("2025-11-15T09:00")),
    ]


def test_baseline_enrolment_in_the_afternoon_invites_at_once() -> None:
    baseline = window("baseline", date(2025, 3, 3))  # 3 .. 10 March, last call 8 March

    messages = plan_messages(SCHEDULE, baseline, ROME, not_before=rome("2025-03-03T15:00"))

    # The +7 reminder would fall on the closing day, after the last call, so it is dropped.
    assert summary(messages) == [
        ("invitation", utc("2025-03-03T14:00")),
        ("reminder_1", utc("2025-03-06T09:00")),
        ("last_call", utc("2025-03-08T09:00")),
    ]


@pytest.mark.parametrize(
    ("enrolled_at", "invited_at"),
    [
        ("2025-03-03T22:00", "2025-03-04T09:00"),  # evening: next morning at the end of quiet
        ("2025-03-03T08:00", "2025-03-03T09:00"),  # early morning: same day at 09:00
        ("2025-03-03T09:30", "2025-03-03T09:30"),  # allowed: right away, before send_time
        ("2025-03-03T19:59", "2025-03-03T19:59"),
        ("2025-03-03T20:00", "2025-03-04T09:00"),
    ],
)
def test_baseline_invitation_waits_for_quiet_hours(enrolled_at: str, invited_at: str) -> None:
    baseline = window("baseline", date(2025, 3, 3))

    messages = plan_messages(SCHEDULE, baseline, ROME, not_before=rome(enrolled_at))

    assert messages[0].kind == "invitation"
    assert messages[0].send_at == rome(invited_at)


def test_enrolment_before_a_window_opens_leaves_its_plan_unchanged() -> None:
    month3 = window("month3", date(2025, 1, 15))

    planned_early = plan_messages(SCHEDULE, month3, ROME, not_before=rome("2025-01-15T15:00"))

    assert planned_early == plan_messages(SCHEDULE, month3, ROME)


def test_late_planning_invites_now_and_keeps_only_future_messages() -> None:
    month3 = window("month3", date(2025, 1, 15))  # 2 .. 30 April

    messages = plan_messages(SCHEDULE, month3, ROME, not_before=rome("2025-04-25T12:00"))

    assert summary(messages) == [
        ("invitation", utc("2025-04-25T10:00")),
        ("last_call", utc("2025-04-28T08:00")),
    ]


def test_invitation_on_the_last_call_day_replaces_the_last_call() -> None:
    month3 = window("month3", date(2025, 1, 15))

    messages = plan_messages(SCHEDULE, month3, ROME, not_before=rome("2025-04-28T11:00"))

    assert summary(messages) == [("invitation", utc("2025-04-28T09:00"))]


@pytest.mark.parametrize("not_before", ["2025-04-30T21:00", "2025-05-01T12:00"])
def test_nothing_is_planned_once_the_window_has_closed(not_before: str) -> None:
    month3 = window("month3", date(2025, 1, 15))  # closes at midnight ending 30 April

    assert plan_messages(SCHEDULE, month3, ROME, not_before=rome(not_before)) == []


def test_baseline_missed_when_enrolled_after_it_closed() -> None:
    baseline = window("baseline", date(2025, 3, 3), enrolled_on=date(2025, 3, 20))

    assert plan_messages(SCHEDULE, baseline, ROME, not_before=rome("2025-03-20T11:00")) == []


def test_naive_not_before_is_refused() -> None:
    month3 = window("month3", date(2025, 1, 15))

    with pytest.raises(ValueError, match="timezone-aware"):
        plan_messages(SCHEDULE, month3, ROME, not_before=datetime(2025, 4, 25, 12, 0))


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("20:00", True),
        ("23:30", True),
        ("00:00", True),
        ("08:59", True),
        ("09:00", False),
        ("12:00", False),
        ("19:59", False),
    ],
)
def test_quiet_hours_run_from_20_to_9(local: str, expected: bool) -> None:
    instant = rome(f"2025-06-10T{local}")

    assert is_quiet(instant, PLAN, ROME) is expected
    assert is_quiet(instant.astimezone(UTC), PLAN, ROME) is expected


@pytest.mark.parametrize(
    ("local", "allowed"),
    [
        ("2025-06-10T22:00", "2025-06-11T09:00"),
        ("2025-06-10T03:00", "2025-06-10T09:00"),
        ("2025-06-10T12:00", "2025-06-10T12:00"),
    ],
)
def test_next_allowed_instant_moves_to_the_end_of_quiet_hours(local: str, allowed: str) -> None:
    moved = next_allowed_instant(rome(local), PLAN, ROME)

    assert moved == rome(allowed)
    assert moved.tzinfo is UTC


def test_next_allowed_instant_over_the_night_clocks_go_forward() -> None:
    # 09:00 local is 08:00 UTC before the March change and 07:00 UTC on the day after it.
    assert next_allowed_instant(rome("2025-03-28T22:00"), PLAN, ROME) == utc("2025-03-29T08:00")
    assert next_allowed_instant(rome("2025-03-29T22:00"), PLAN, ROME) == utc("2025-03-30T07:00")
    assert next_allowed_instant(rome("2025-03-31T06:00"), PLAN, ROME) == utc("2025-03-31T07:00")


def test_quiet_hours_within_one_day() -> None:
    lunch = dataclasses.replace(PLAN, quiet_start=time(13, 0), quiet_end=time(15, 0))

    assert not is_quiet(rome("2025-06-10T12:59"), lunch, ROME)
    assert is_quiet(rome("2025-06-10T13:00"), lunch, ROME)
    assert not is_quiet(rome("2025-06-10T22:00"), lunch, ROME)
    assert next_allowed_instant(rome("2025-06-10T14:00"), lunch, ROME) == rome("2025-06-10T15:00")


@settings(max_examples=300, deadline=None)
@given(
    randomized_on=st.dates(min_value=date(2020, 1, 1), max_value=date(2036, 12, 31)),
    zone=st.sampled_from(ZONES),
    # Enrolment from 30 days before randomization to 10 days after, to the minute.
    enrolled_after_minutes=st.integers(min_value=-30 * 24 * 60, max_value=10 * 24 * 60),
)
def test_planned_messages_respect_quiet_hours_windows_and_the_end_of_participation(
    randomized_on: date, zone: str, enrolled_after_minutes: int
) -> None:
    tz = ZoneInfo(zone)
    enrolled_at = local_instant(randomized_on, time(0), tz) + timedelta(
        minutes=enrolled_after_minutes
    )
    enrolled_on = enrolled_at.astimezone(tz).date()
    ends_at = participation_ends_at(SCHEDULE, randomized_on, tz)

    for assessment in plan_windows(SCHEDULE, randomized_on, enrolled_on):
        messages = plan_messages(SCHEDULE, assessment, tz, not_before=enrolled_at)

        send_times = [message.send_at for message in messages]
        assert send_times == sorted(send_times)
        assert len({at.astimezone(tz).date() for at in send_times}) == len(messages)
        for message in messages:
            assert message.timepoint == assessment.timepoint
            assert message.send_at.tzinfo is UTC
            assert not is_quiet(message.send_at, PLAN, tz)
            assert assessment.contains(message.send_at, tz)
            assert message.send_at >= enrolled_at
            assert message.send_at < ends_at  # never after day 196 for this schedule
        if messages:
            assert messages[0].kind == "invitation"


@settings(max_examples=200, deadline=None)
@given(
    randomized_on=st.dates(min_value=date(2020, 1, 1), max_value=date(2036, 12, 31)),
    zone=st.sampled_from(ZONES),
)
def test_planned_in_advance_every_message_goes_at_10_local(randomized_on: date, zone: str) -> None:
    tz = ZoneInfo(zone)

    for assessment in plan_windows(SCHEDULE, randomized_on, randomized_on)[1:]:
        messages = plan_messages(SCHEDULE, assessment, tz)

        assert [message.kind for message in messages] == [
            "invitation",
            "reminder_1",
            "reminder_2",
            "last_call",
        ]
        assert {message.send_at.astimezone(tz).time() for message in messages} == {time(10, 0)}
