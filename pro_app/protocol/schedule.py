"""Load and check questionnaires/schedule.yaml, reporting every problem at once."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from pro_app.protocol.model import (
    ALLOWED_CHANNELS,
    Arm,
    ReminderPlan,
    Schedule,
    TimePoint,
    Window,
    is_in_quiet_hours,
)
from pro_app.protocol.problems import ProblemReport, ScheduleProblem, kind_of

__all__ = [
    "Arm",
    "ReminderPlan",
    "Schedule",
    "ScheduleError",
    "ScheduleProblem",
    "TimePoint",
    "Window",
    "find_schedule_problems",
    "load_schedule",
]

_TOP_KEYS = ("version", "timezone", "arms", "timepoints", "reminders")
_TIMEPOINT_KEYS = ("code", "label", "target_day", "window", "instruments")
_REMINDER_KEYS = (
    "invitation", "after_days", "last_call_days_before_close", "send_time", "quiet_hours",
    "channels",
)  # fmt: skip


class ScheduleError(Exception):
    """The schedule file cannot be used; `.problems` lists every reason."""

    def __init__(self, problems: Sequence[ScheduleProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


def find_schedule_problems(
    path: str | PathLike[str], known_instruments: set[str] | None = None
) -> list[ScheduleProblem]:
    """Every problem in a schedule file; an empty list means it loads."""
    return _read(Path(path), known_instruments)[1]


def load_schedule(path: str | PathLike[str], known_instruments: set[str] | None = None) -> Schedule:
    """The schedule in a file; ScheduleError listing all problems if it has any."""
    schedule, problems = _read(Path(path), known_instruments)
    if schedule is None:
        raise ScheduleError(problems)
    return schedule


def _read(
    path: Path, known_instruments: set[str] | None
) -> tuple[Schedule | None, list[ScheduleProblem]]:
    report = ProblemReport(path.name)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        report.add("", f"cannot be read ({error})")
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        report.add(where, f"is not valid YAML ({getattr(error, 'problem', None) or 'syntax'})")
    else:
        if data is None:
            report.add("", "is empty")
        schedule = _parse_schedule(data, report, known_instruments)
        if schedule is not None and not report.problems:
            return schedule, []
    return None, report.problems


def _parse_schedule(
    data: Any, report: ProblemReport, known_instruments: set[str] | None
) -> Schedule | None:
    top = report.mapping(data, "", _TOP_KEYS)
    if top is None:
        return None
    version = report.integer(top.get("version"), "version", "version", minimum=1)
    timezone = _parse_timezone(top.get("timezone"), report)
    arms = _parse_arms(top.get("arms"), report)
    timepoints = _parse_timepoints(top.get("timepoints"), report, known_instruments)
    reminders = _parse_reminders(top.get("reminders"), report)
    if timepoints is not None:
        _check_order(timepoints, report)
        if reminders is not None:
            _check_reminders_fit(timepoints, reminders, report)
    if (
        version is None
        or timezone is None
        or arms is None
        or timepoints is None
        or reminders is None
    ):
        return None
    return Schedule(version, timezone, arms, timepoints, reminders)


def _parse_timezone(value: Any, report: ProblemReport) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        report.add("timezone", f"must be an IANA time zone name, not {kind_of(value)}")
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        report.add("timezone", f"unknown time zone {value!r}")
        return None
    return value


def _parse_arms(value: Any, report: ProblemReport) -> tuple[Arm, ...] | None:
    entries = report.items(value, "arms")
    if entries is None:
        return None
    arms: list[Arm] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        where = _entry_where("arm", "arms", index, entry)
        fields = report.mapping(entry, where, ("code", "label"))
        if fields is None:
            continue
        code = report.code(fields.get("code"), where, seen)
        labels = report.labels(fields.get("label"), where)
        if code is not None and labels is not None:
            arms.append(Arm(code, labels))
    return tuple(arms) if len(arms) == len(entries) else None


def _entry_where(singular: str, plural: str, index: int, entry: Any) -> str:
    """'timepoint month3' when the entry has a usable code, else 'timepoints[2]' (1-based)."""
    code = entry.get("code") if isinstance(entry, dict) else None
    return f"{singular} {code}" if isinstance(code, str) and code else f"{plural}[{index + 1}]"


def _parse_timepoints(
    value: Any, report: ProblemReport, known_instruments: set[str] | None
) -> tuple[TimePoint, ...] | None:
    entries = report.items(value, "timepoints")
    if entries is None:
        return None
    timepoints: list[TimePoint] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        where = _entry_where("timepoint", "timepoints", index, entry)
        fields = report.mapping(entry, where, _TIMEPOINT_KEYS)
        if fields is None:
            continue
        code = report.code(fields.get("code"), where, seen)
        labels = report.labels(fields.get("label"), where)
        target_day = report.integer(fields.get("target_day"), where, "target_day")
        window = _parse_window(fields.get("window"), where, target_day, report)
        instruments = _parse_instruments(
            fields.get("instruments"), where, report, known_instruments
        )
        if (
            code is None
            or labels is None
            or target_day is None
            or window is None
            or instruments is None
        ):
            continue
        timepoints.append(TimePoint(code, labels, target_day, window, instruments))
    return tuple(timepoints) if len(timepoints) == len(entries) else None


def _parse_window(
    value: Any, where: str, target_day: int | None, report: ProblemReport
) -> Window | None:
    fields = report.mapping(value, f"{where}: window", ("after_days",), ("before_days", "opens"))
    if fields is None:
        return None
    after_days = report.integer(fields.get("after_days"), where, "window after_days")
    before_days = report.integer(fields.get("before_days"), where, "window before_days")
    opens = fields.get("opens")
    if opens is not None and opens != "enrolment":
        report.add(where, f"window opens must be 'enrolment', not {opens!r}")
        return None
    if "opens" in fields and "before_days" in fields:
        report.add(where, "window has both opens and before_days; keep one")
        return None
    if "opens" not in fields and "before_days" not in fields:
        report.add(where, "window needs before_days or opens: enrolment")
        return None
    if after_days is None or (before_days is None and opens is None):
        return None
    if target_day is not None and (after_days < 0 or (before_days or 0) < 0):
        report.add(where, f"target day {target_day} is outside its own window")
        return None
    return Window(after_days=after_days, before_days=before_days)


def _parse_instruments(
    value: Any, where: str, report: ProblemReport, known_instruments: set[str] | None
) -> tuple[str, ...] | None:
    entries = report.items(value, where, "instruments")
    if entries is None:
        return None
    is_usable = True
    for position, code in enumerate(entries):
        if not isinstance(code, str):
            report.add(where, f"instrument must be a code, not {kind_of(code)}")
            is_usable = False
        elif code in entries[:position]:
            report.add(where, f"instrument {code} is listed twice")
            is_usable = False
        elif known_instruments is not None and code not in known_instruments:
            report.add(where, f"unknown instrument {code}")
            is_usable = False
    return tuple(entries) if is_usable else None


def _check_order(timepoints: tuple[TimePoint, ...], report: ProblemReport) -> None:
    """Windows must follow the listed order and never share a day."""
    for later_index, later in enumerate(timepoints):
        where = f"timepoint {later.code}"
        if later_index > 0 and later.window.opens_at_enrolment:
            report.add(where, "only the first timepoint may open at enrolment")
            continue
        for earlier in timepoints[:later_index]:
            if later.target_day <= earlier.target_day:
                report.add(
                    where,
                    f"windows out of order: target day {later.target_day} is not "
                    f"after timepoint {earlier.code} (day {earlier.target_day})",
                )
            elif later.first_day is None or later.first_day <= earlier.last_day:
                report.add(where, f"window overlaps timepoint {earlier.code}")


def _check_reminders_fit(
    timepoints: tuple[TimePoint, ...], plan: ReminderPlan, report: ProblemReport
) -> None:
    """Every reminder and the last call must land inside every window."""
    for timepoint in timepoints:
        # A window opening at enrolment is measured from its target day: the usual enrolment day.
        first_day = timepoint.target_day if timepoint.first_day is None else timepoint.first_day
        length = timepoint.last_day - first_day + 1
        for days in plan.after_days:
            if days >= length:
                report.add(
                    "reminders",
                    f"reminder after {days} days falls after the window of "
                    f"timepoint {timepoint.code} closes ({length} days)",
                )
        if plan.last_call_days_before_close >= length:
            report.add(
                "reminders",
                f"last call {plan.last_call_days_before_close} days before "
                f"closing falls before timepoint {timepoint.code} opens "
                f"({length} days)",
            )


def _parse_reminders(value: Any, report: ProblemReport) -> ReminderPlan | None:
    where = "reminders"
    fields = report.mapping(value, where, _REMINDER_KEYS)
    if fields is None:
        return None
    if fields.get("invitation") not in (None, "at_window_open"):
        report.add(where, f"invitation must be 'at_window_open', not {fields['invitation']!r}")
    after_days = _parse_after_days(fields.get("after_days"), report)
    last_call = report.integer(
        fields.get("last_call_days_before_close"), where, "last_call_days_before_close", minimum=0
    )
    send_time = report.clock_time(fields.get("send_time"), where, "send_time")
    quiet = report.mapping(fields.get("quiet_hours"), f"{where}: quiet_hours", ("start", "end"))
    quiet_start = quiet_end = None
    if quiet is not None:
        quiet_start = report.clock_time(quiet.get("start"), where, "quiet_hours start")
        quiet_end = report.clock_time(quiet.get("end"), where, "quiet_hours end")
    if quiet_start is not None and quiet_start == quiet_end:
        report.add(where, "quiet_hours start and end must differ")
        quiet_start = None
    if (
        send_time is not None
        and quiet_start is not None
        and quiet_end is not None
        and is_in_quiet_hours(send_time, quiet_start, quiet_end)
    ):
        report.add(
            where,
            f"send_time {send_time:%H:%M} is inside quiet hours "
            f"{quiet_start:%H:%M}–{quiet_end:%H:%M}",
        )
        send_time = None
    channels = _parse_channels(fields.get("channels"), report)
    if (
        after_days is None
        or last_call is None
        or send_time is None
        or quiet_start is None
        or quiet_end is None
        or channels is None
    ):
        return None
    return ReminderPlan(after_days, last_call, send_time, quiet_start, quiet_end, channels)


def _parse_after_days(value: Any, report: ProblemReport) -> tuple[int, ...] | None:
    entries = report.items(value, "reminders", "after_days", allow_empty=True)
    if entries is None:
        return None
    days = [report.integer(item, "reminders", "after_days", minimum=1) for item in entries]
    if any(day is None for day in days):
        return None
    checked = tuple(day for day in days if day is not None)
    # Reminders are numbered in this order, so the numbers must follow the calendar.
    if list(checked) != sorted(set(checked)):
        report.add("reminders", "after_days must be increasing, each day once")
        return None
    return checked


def _parse_channels(value: Any, report: ProblemReport) -> tuple[str, ...] | None:
    entries = report.items(value, "reminders", "channels")
    if entries is None:
        return None
    is_usable = True
    for position, channel in enumerate(entries):
        if channel not in ALLOWED_CHANNELS:
            report.add(
                "reminders", f"unknown channel {channel!r} (allowed: {', '.join(ALLOWED_CHANNELS)})"
            )
            is_usable = False
        elif channel in entries[:position]:
            report.add("reminders", f"channel {channel} is listed twice")
            is_usable = False
    return tuple(entries) if is_usable else None
