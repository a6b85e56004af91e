"""The trial's arms, time points and reminder plan as immutable objects (loaded by schedule.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from zoneinfo import ZoneInfo

DEFAULT_LOCALE = "it"
REQUIRED_LOCALES = ("it", "en")
ALLOWED_CHANNELS = ("email", "sms")


def _pick_label(labels: Mapping[str, str], locale: str) -> str:
    """Label for a locale such as "en" or "en_GB", falling back to Italian."""
    language = locale.replace("-", "_").split("_")[0]
    for key in (locale, language):
        if key in labels:
            return labels[key]
    return labels[DEFAULT_LOCALE]


def is_in_quiet_hours(local_time: time, quiet_start: time, quiet_end: time) -> bool:
    """Whether a local wall-clock time lies in [quiet_start, quiet_end), which may wrap midnight."""
    if quiet_start < quiet_end:
        return quiet_start <= local_time < quiet_end
    return local_time >= quiet_start or local_time < quiet_end


@dataclass(frozen=True)
class Arm:
    """A trial arm: a stable code and its labels by locale."""

    code: str
    labels: Mapping[str, str]

    def label(self, locale: str) -> str:
        """The arm's label in a locale (Italian when the locale has none)."""
        return _pick_label(self.labels, locale)


@dataclass(frozen=True)
class Window:
    """Where a time point's window lies, in days around its target day (both ends included)."""

    after_days: int
    before_days: int | None = None  # None: the window opens on the enrolment date

    @property
    def opens_at_enrolment(self) -> bool:
        """Whether the window opens on the enrolment date rather than a protocol day."""
        return self.before_days is None


@dataclass(frozen=True)
class TimePoint:
    """One assessment: when it is due, its window and the instruments it asks for."""

    code: str
    labels: Mapping[str, str]
    target_day: int
    window: Window
    instruments: tuple[str, ...]

    def label(self, locale: str) -> str:
        """The time point's label in a locale (Italian when the locale has none)."""
        return _pick_label(self.labels, locale)

    @property
    def first_day(self) -> int | None:
        """First day of the window counted from randomization; None if it opens at enrolment."""
        if self.window.before_days is None:
            return None
        return self.target_day - self.window.before_days

    @property
    def last_day(self) -> int:
        """Last day (included) of the window counted from randomization."""
        return self.target_day + self.window.after_days


@dataclass(frozen=True)
class ReminderPlan:
    """When invitations, reminders and last calls go out, in the patient's local time."""

    after_days: tuple[int, ...]
    last_call_days_before_close: int
    send_time: time
    quiet_start: time
    quiet_end: time
    channels: tuple[str, ...]

    def is_quiet_time(self, local_time: time) -> bool:
        """Whether nothing may be sent at this local wall-clock time."""
        return is_in_quiet_hours(local_time, self.quiet_start, self.quiet_end)


@dataclass(frozen=True)
class Schedule:
    """The whole schedule file: arms, time points in order, and the reminder plan."""

    version: int
    timezone: str
    arms: tuple[Arm, ...]
    timepoints: tuple[TimePoint, ...]
    reminders: ReminderPlan

    @property
    def default_tz(self) -> ZoneInfo:
        """The default patient time zone as a ZoneInfo."""
        return ZoneInfo(self.timezone)

    @property
    def last_timepoint(self) -> TimePoint:
        """The last time point (loading guarantees the list is in chronological order)."""
        return self.timepoints[-1]

    def timepoint(self, code: str) -> TimePoint:
        """The time point with this code; KeyError if there is none."""
        for timepoint in self.timepoints:
            if timepoint.code == code:
                return timepoint
        raise KeyError(f"no timepoint {code!r} in the schedule")

    def arm(self, code: str) -> Arm:
        """The arm with this code; KeyError if there is none."""
        for arm in self.arms:
            if arm.code == code:
                return arm
        raise KeyError(f"no arm {code!r} in the schedule")
