"""One patient's assessment windows: protocol days turned into local dates and UTC instants."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pro_app.protocol.model import Schedule, TimePoint

MIDNIGHT = time(0)


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant at which clocks in `tz` show `at` on `day`."""
    # fold=0 (the default) turns a wall time skipped by a spring-forward gap into the same moment
    # after it (02:30 -> 03:30, and a skipped midnight into the day's first instant), and picks
    # the first of a repeated autumn hour: every local date and time maps to one real instant.
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def require_aware(instant: datetime) -> None:
    """Raise ValueError for a naive datetime, which would silently mean server local time."""
    if instant.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got {instant!r}")


@dataclass(frozen=True)
class AssessmentWindow:
    """When one time point may be answered: local dates, both ends included."""

    timepoint: str
    target_on: date
    opens_on: date
    closes_on: date

    def opens_at(self, tz: ZoneInfo) -> datetime:
        """First instant of the opening day in the patient's time zone, in UTC."""
        return local_instant(self.opens_on, MIDNIGHT, tz)

    def closes_at(self, tz: ZoneInfo) -> datetime:
        """First instant after the closing day (local midnight that ends it), in UTC."""
        return local_instant(self.closes_on + timedelta(days=1), MIDNIGHT, tz)

    def contains(self, instant: datetime, tz: ZoneInfo) -> bool:
        """Whether an aware instant falls inside the window."""
        require_aware(instant)
        return self.opens_at(tz) <= instant < self.closes_at(tz)


def plan_windows(
    schedule: Schedule, randomized_on: date, enrolled_on: date
) -> list[AssessmentWindow]:
    """The patient's window for every time point, in schedule order."""
    return [_window_for(timepoint, randomized_on, enrolled_on) for timepoint in schedule.timepoints]


def participation_ends_at(schedule: Schedule, randomized_on: date, tz: ZoneInfo) -> datetime:
    """When the last window closes: after this nothing is asked or sent (UTC)."""
    # The enrolment date only moves where a window opens, never where it closes.
    last = _window_for(schedule.last_timepoint, randomized_on, enrolled_on=randomized_on)
    return last.closes_at(tz)


def _window_for(timepoint: TimePoint, randomized_on: date, enrolled_on: date) -> AssessmentWindow:
    target_on = randomized_on + timedelta(days=timepoint.target_day)
    closes_on = randomized_on + timedelta(days=timepoint.last_day)
    if timepoint.first_day is None:
        # Opens on the enrolment date, before or after randomization. Enrolled after the window
        # closed: a one-day window on its last day, already over, so the assessment is missed
        # rather than open after the protocol's limit.
        opens_on = min(enrolled_on, closes_on)
    else:
        opens_on = randomized_on + timedelta(days=timepoint.first_day)
    return AssessmentWindow(timepoint.code, target_on, opens_on, closes_on)
