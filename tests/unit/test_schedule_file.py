"""The shipped schedule matches PROTOCOL.md, and every kind of broken schedule is reported."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from pro_app.protocol.schedule import (
    ScheduleError,
    ScheduleProblem,
    find_schedule_problems,
    load_schedule,
)

SHIPPED = Path(__file__).resolve().parents[2] / "questionnaires" / "schedule.yaml"
INSTRUMENTS = {"qlq_c30", "qlq_gi_net21"}


def shipped_data() -> dict[str, Any]:
    return yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))


def problems_after(tmp_path: Path, change: Callable[[dict[str, Any]], object]) -> list[str]:
    """Problems of the shipped schedule after `change` edits a copy of it."""
    data = copy.deepcopy(shipped_data())
    change(data)
    path = tmp_path / "schedule.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return [str(problem) for problem in find_schedule_problems(path, INSTRUMENTS)]


def test_shipped_schedule_has_no_problems() -> None:
    assert find_schedule_problems(SHIPPED, INSTRUMENTS) == []


def test_shipped_windows_are_the_protocol_windows() -> None:
    schedule = load_schedule(SHIPPED, INSTRUMENTS)

    days = {tp.code: (tp.first_day, tp.target_day, tp.last_day) for tp in schedule.timepoints}

    # None: baseline opens at enrolment, whatever day that is.
    assert days == {"baseline": (None, 0, 7), "month3": (77, 91, 105), "month6": (168, 182, 196)}
    assert schedule.timepoint("baseline").window.opens_at_enrolment
    assert schedule.last_timepoint.code == "month6"
    assert all(tp.instruments == ("qlq_c30", "qlq_gi_net21") for tp in schedule.timepoints)


def test_shipped_reminders_are_the_protocol_reminders() -> None:
    plan = load_schedule(SHIPPED).reminders

    assert plan.after_days == (3, 7)
    assert plan.last_call_days_before_close == 2
    assert plan.send_time == time(10, 0)
    assert (plan.quiet_start, plan.quiet_end) == (time(20, 0), time(9, 0))
    assert plan.channels == ("email", "sms")


def test_shipped_labels_and_arms() -> None:
    schedule = load_schedule(SHIPPED)

    assert schedule.timezone == "Europe/Rome"
    assert str(schedule.default_tz) == "Europe/Rome"
    assert [arm.code for arm in schedule.arms] == ["tae", "control"]
    assert schedule.arm("control").label("it") == "Solo terapia sistemica"
    assert schedule.timepoint("month3").label("it") == "Mese 3"
    assert schedule.timepoint("month3").label("en_GB") == "Month 3"
    assert schedule.timepoint("month3").label("de") == "Mese 3"  # Italian is the fallback


def test_unknown_codes_raise_key_error() -> None:
    schedule = load_schedule(SHIPPED)

    with pytest.raises(KeyError, match="month12"):
        schedule.timepoint("month12")
    with pytest.raises(KeyError, match="placebo"):
        schedule.arm("placebo")


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """A change that sets data[a][b]... where path is "a.b" (list indexes as numbers)."""

    def change(data: dict[str, Any]) -> None:
        *parents, last = [int(key) if key.isdigit() else key for key in path.split(".")]
        target: Any = data
        for key in parents:
            target = target[key]
        target[last] = value

    return change


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        *parents, last = [int(key) if key.isdigit() else key for key in path.split(".")]
        target: Any = data
        for key in parents:
            target = target[key]
        del target[last]

    return change


def _swap_month3_and_month6(data: dict[str, Any]) -> None:
    timepoints = data["timepoints"]
    timepoints[1], timepoints[2] = timepoints[2], timepoints[1]


BROKEN = {
    "missing key": (_delete("reminders.send_time"), "reminders: missing required key 'send_time'"),
    "key without a value": (
        _set("reminders.send_time", None),
        "reminders: missing required key 'send_time'",
    ),
    "empty list entry": (
        _set("reminders.after_days", [3, None]),
        "reminders: after_days has an empty entry",
    ),
    "not a mapping": (
        _set("reminders.quiet_hours", "20-9"),
        "reminders: quiet_hours: must be a mapping, not text",
    ),
    "unknown key": (_set("reminders.after_day", [3]), "reminders: unknown key 'after_day'"),
    "ill-typed day": (
        _set("timepoints.1.target_day", "91"),
        "schedule.yaml: timepoint month3: target_day must be a whole number, not text",
    ),
    "boolean is not a day": (
        _set("reminders.last_call_days_before_close", True),
        "reminders: last_call_days_before_close must be a whole number, not true/false",
    ),
    "duplicate timepoint code": (
        _set("timepoints.2.code", "month3"),
        "timepoint month3: duplicate code 'month3'",
    ),
    "duplicate arm code": (_set("arms.1.code", "tae"), "arm tae: duplicate code 'tae'"),
    "missing English label": (
        _delete("timepoints.1.label.en"),
        "timepoint month3: missing en label",
    ),
    "empty Italian label": (_set("arms.0.label.it", " "), "arm tae: it label is empty"),
    "target day outside its window": (
        _set("timepoints.1.window.after_days", -3),
        "timepoint month3: target day 91 is outside its own window",
    ),
    "overlapping windows": (
        _set("timepoints.1.window.before_days", 85),
        "timepoint month3: window overlaps timepoint baseline",
    ),
    "windows out of order": (
        _swap_month3_and_month6,
        "timepoint month3: windows out of order: target day 91 is not after "
        "timepoint month6 (day 182)",
    ),
    "enrolment opening after the first": (
        _set("timepoints.1.window", {"opens": "enrolment", "after_days": 14}),
        "timepoint month3: only the first timepoint may open at enrolment",
    ),
    "unknown instrument": (
        _set("timepoints.2.instruments", ["qlq_c30", "qlq_br23"]),
        "timepoint month6: unknown instrument qlq_br23",
    ),
    "reminder after the window closes": (
        _set("reminders.after_days", [3, 8]),
        "reminders: reminder after 8 days falls after the window of timepoint baseline "
        "closes (8 days)",
    ),
    "last call before the window opens": (
        _set("reminders.last_call_days_before_close", 8),
        "reminders: last call 8 days before closing falls before timepoint baseline opens (8 days)",
    ),
    "reminder days not increasing": (
        _set("reminders.after_days", [7, 3]),
        "reminders: after_days must be increasing, each day once",
    ),
    "malformed quiet hours": (
        _set("reminders.quiet_hours.end", "9am"),
        "reminders: quiet_hours end must be a time like \"10:00\", not '9am'",
    ),
    "unquoted time": (
        _set("reminders.send_time", 600),
        'reminders: send_time must be a quoted time like "10:00", not the number 600',
    ),
    "impossible hour": (
        _set("reminders.send_time", "24:00"),
        "reminders: send_time must be a time like \"10:00\", not '24:00'",
    ),
    "send time inside quiet hours": (
        _set("reminders.send_time", "08:30"),
        "reminders: send_time 08:30 is inside quiet hours 20:00–09:00",
    ),
    "empty quiet hours": (
        _set("reminders.quiet_hours", {"start": "20:00", "end": "20:00"}),
        "reminders: quiet_hours start and end must differ",
    ),
    "unknown channel": (
        _set("reminders.channels", ["email", "whatsapp"]),
        "reminders: unknown channel 'whatsapp' (allowed: email, sms)",
    ),
    "unknown timezone": (
        _set("timezone", "Europe/Roma"),
        "timezone: unknown time zone 'Europe/Roma'",
    ),
    "unknown invitation rule": (
        _set("reminders.invitation", "at_target_day"),
        "reminders: invitation must be 'at_window_open', not 'at_target_day'",
    ),
}


@pytest.mark.parametrize(("change", "expected"), BROKEN.values(), ids=BROKEN.keys())
def test_broken_schedule_reports_its_precise_problem(
    tmp_path: Path, change: Callable[[dict[str, Any]], object], expected: str
) -> None:
    problems = problems_after(tmp_path, change)

    prefixed = expected if expected.startswith("schedule.yaml: ") else f"schedule.yaml: {expected}"
    assert problems == [prefixed]


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    def break_twice(data: dict[str, Any]) -> None:
        data["timezone"] = "Mars/Olympus"
        data["reminders"]["channels"] = ["fax"]

    assert len(problems_after(tmp_path, break_twice)) == 2


def test_instruments_are_not_checked_without_a_list(tmp_path: Path) -> None:
    path = tmp_path / "schedule.yaml"
    data = shipped_data()
    data["timepoints"][0]["instruments"] = ["anything"]
    path.write_text(yaml.safe_dump(data), encoding="utf-8")

    assert find_schedule_problems(path) == []


def test_load_schedule_raises_with_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "schedule.yaml"
    path.write_text("version: 1\ntimezone: Europe/Rome\n", encoding="utf-8")

    with pytest.raises(ScheduleError) as raised:
        load_schedule(path)

    assert [str(problem) for problem in raised.value.problems] == [
        "schedule.yaml: missing required key 'arms'",
        "schedule.yaml: missing required key 'timepoints'",
        "schedule.yaml: missing required key 'reminders'",
    ]
    assert str(raised.value).splitlines()[0] == "schedule.yaml: missing required key 'arms'"


def test_unreadable_empty_and_invalid_files(tmp_path: Path) -> None:
    missing = find_schedule_problems(tmp_path / "schedule.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n", encoding="utf-8")
    invalid = tmp_path / "bad.yaml"
    invalid.write_text("version: 1\ntimepoints: [\n", encoding="utf-8")

    assert [problem.where for problem in missing] == [""]
    assert str(missing[0]).startswith("schedule.yaml: cannot be read")
    assert [str(problem) for problem in find_schedule_problems(empty)] == ["empty.yaml: is empty"]
    assert [str(problem).split(" (")[0] for problem in find_schedule_problems(invalid)] == [
        "bad.yaml: line 3: is not valid YAML"
    ]


def test_problem_reads_as_one_line() -> None:
    problem = ScheduleProblem(
        "schedule.yaml", "timepoint month3", "window overlaps timepoint baseline"
    )

    assert str(problem) == "schedule.yaml: timepoint month3: window overlaps timepoint baseline"
