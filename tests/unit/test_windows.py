"""Assessment windows: protocol days to local dates and UTC instants, across daylight saving."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pro_app.protocol.schedule import load_schedule
from pro_app.protocol.windows import (
    AssessmentWindow,
    participation_ends_at,
    plan_windows,
)

SCHEDULE = load_schedule(Path(__file__).resolve().parents[2] / "questionnaires" / "schedule.yaml")
ROME = ZoneInfo("Europe/Rome")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def windows_by_code(randomized_on: date, enrolled_on: date) -> dict[str, AssessmentWindow]:
    return {w.timepoint: w for w in plan_windows(SCHEDULE, randomized_on, enrolled_on)}


def test_windows_follow_the_protocol_days() -> None:
    randomized_on = date(2025, 1, 15)

    windows = windows_by_code(randomized_on, enrolled_on=date(2025, 1, 13))

    def days(window: AssessmentWindow) -> tuple[int, ...]:
        dates = (window.opens_on, window.target_on, window.closes_on)
        return tuple((day - randomized_on).days for day in dates)

    assert list(windows) == ["baseline", "month3", "month6"]
    assert days(windows["baseline"]) == (-2, 0, 7)
    assert days(windows["month3"]) == (77, 91, 105)
    assert days(windows["month6"]) == (168, 182, 196)


@pytest.mark.parametrize(
    ("enrolled_on", "opens_on"),
    [
        (date(2025, 1, 10), date(2025, 1, 10)),  # before randomization
        (date(2025, 1, 15), date(2025, 1, 15)),  # on the day
        (date(2025, 1, 18), date(2025, 1, 18)),  # after randomization, window still open
        (date(2025, 1, 22), date(2025, 1, 22)),  # on the last day
        (date(2025, 2, 20), date(2025, 1, 22)),  # after it closed: already over, so missed
    ],
)
def test_baseline_opens_on_the_enrolment_date(enrolled_on: date, opens_on: date) -> None:
    baseline = windows_by_code(date(2025, 1, 15), enrolled_on)["baseline"]

    assert (baseline.opens_on, baseline.closes_on) == (opens_on, date(2025, 1, 22))
    assert baseline.opens_on <= baseline.closes_on


def test_enrolment_does_not_move_later_windows() -> None:
    early = windows_by_code(date(2025, 1, 15), date(2025, 1, 1))
    late = windows_by_code(date(2025, 1, 15), date(2025, 1, 20))

    assert early["month3"] == late["month3"]
    assert early["month6"] == late["month6"]


# Europe/Rome changed clocks on 2025-03-30 (CET +01 -> CEST +02) and 2025-10-26 (back to CET).
@pytest.mark.parametrize(
    ("opens_on", "opens_at"),
    [
        (date(2025, 3, 29), "2025-03-28T23:00"),
        (date(2025, 3, 30), "2025-03-29T23:00"),  # the change happens at 02:00, after midnight
        (date(2025, 3, 31), "2025-03-30T22:00"),
        (date(2025, 10, 26), "2025-10-25T22:00"),
        (date(2025, 10, 27), "2025-10-26T23:00"),
    ],
)
def test_window_opens_at_local_midnight_in_rome(opens_on: date, opens_at: str) -> None:
    window = AssessmentWindow("month3", opens_on, opens_on, opens_on)

    assert window.opens_at(ROME) == utc(opens_at)
    assert window.opens_at(ROME).tzinfo is UTC


def test_window_across_the_march_change_is_an_hour_shorter() -> None:
    window = AssessmentWindow("month3", date(2025, 3, 30), date(2025, 3, 29), date(2025, 3, 30))

    assert window.opens_at(ROME) == utc("2025-03-28T23:00")
    assert window.closes_at(ROME) == utc("2025-03-30T22:00")  # midnight ending 30 March, CEST
    assert window.closes_at(ROME) - window.opens_at(ROME) == timedelta(hours=47)


def test_window_across_the_october_change_is_an_hour_longer() -> None:
    window = AssessmentWindow("month6", date(2025, 10, 26), date(2025, 10, 25), date(2025, 10, 26))

    assert window.opens_at(ROME) == utc("2025-10-24T22:00")
    assert window.closes_at(ROME) == utc("2025-10-26T23:00")
    assert window.closes_at(ROME) - window.opens_at(ROME) == timedelta(hours=49)


@pytest.mark.parametrize(
    ("zone", "opens_at", "closes_at"),
    [
        # New York moved to EDT on 2025-03-09.
        ("America/New_York", "2025-03-08T05:00", "2025-03-10T04:00"),
        # Tokyo has no daylight saving.
        ("Asia/Tokyo", "2025-03-07T15:00", "2025-03-09T15:00"),
        # Southern hemisphere: Santiago is on summer time (UTC-3) until April.
        ("America/Santiago", "2025-03-08T03:00", "2025-03-10T03:00"),
    ],
)
def test_window_instants_in_other_time_zones(zone: str, opens_at: str, closes_at: str) -> None:
    window = AssessmentWindow("month3", date(2025, 3, 9), date(2025, 3, 8), date(2025, 3, 9))

    assert window.opens_at(ZoneInfo(zone)) == utc(opens_at)
    assert window.closes_at(ZoneInfo(zone)) == utc(closes_at)


def test_a_day_whose_midnight_is_skipped_starts_when_clocks_resume() -> None:
    # Santiago moved clocks from 00:00 to 01:00 on 2025-09-07.
    santiago = ZoneInfo("America/Santiago")
    window = AssessmentWindow("month3", date(2025, 9, 7), date(2025, 9, 7), date(2025, 9, 7))

    assert window.opens_at(santiago) == utc("2025-09-07T04:00")
    assert window.opens_at(santiago).astimezone(santiago).hour == 1


def test_contains_includes_the_opening_instant_and_excludes_the_closing_one() -> None:
    window = AssessmentWindow("month3", date(2025, 4, 16), date(2025, 4, 2), date(2025, 4, 30))
    closes_at = window.closes_at(ROME)

    assert window.contains(window.opens_at(ROME), ROME)
    assert not window.contains(window.opens_at(ROME) - timedelta(microseconds=1), ROME)
    assert window.contains(closes_at - timedelta(microseconds=1), ROME)
    assert not window.contains(closes_at, ROME)
    # 23:30 local on the closing day is still inside, whatever the UTC date says.
    assert window.contains(datetime(2025, 4, 30, 23, 30, tzinfo=ROME), ROME)


def test_contains_refuses_naive_datetimes() -> None:
    window = AssessmentWindow("month3", date(2025, 4, 16), date(2025, 4, 2), date(2025, 4, 30))

    with pytest.raises(ValueError, match="timezone-aware"):
        window.contains(datetime(2025, 4, 10, 12, 0), ROME)


def test_participation_ends_when_the_month6_window_closes() -> None:
    randomized_on = date(2025, 1, 15)  # day 196 is 2025-07-30

    assert participation_ends_at(SCHEDULE, randomized_on, ROME) == utc("2025-07-30T22:00")
    assert participation_ends_at(SCHEDULE, randomized_on, ZoneInfo("Asia/Tokyo")) == utc(
        "2025-07-30T15:00"
    )
    last = windows_by_code(randomized_on, randomized_on)["month6"]
    assert participation_ends_at(SCHEDULE, randomized_on, ROME) == last.closes_at(ROME)
