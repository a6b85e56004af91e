"""Problems found in a configuration file, and a helper that reads YAML values and reports them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import time
from types import MappingProxyType
from typing import Any

from pro_app.protocol.model import REQUIRED_LOCALES

# Codes end up in exports, URLs and analysts' scripts, so keep them plain snake_case.
_CODE = re.compile(r"[a-z][a-z0-9_]*\Z")
_HH_MM = re.compile(r"(\d{1,2}):(\d{2})\Z")
_KIND_NAMES: dict[type, str] = {
    bool: "true/false",
    int: "a number",
    float: "a number",
    str: "text",
    list: "a list",
    dict: "a mapping",
}


@dataclass(frozen=True)
class ScheduleProblem:
    """One thing wrong with a schedule file, and where."""

    file: str
    where: str
    problem: str

    def __str__(self) -> str:
        return ": ".join(part for part in (self.file, self.where, self.problem) if part)


def kind_of(value: Any) -> str:
    """How a YAML value reads to someone editing the file."""
    if value is None:
        return "empty"
    return _KIND_NAMES.get(type(value), type(value).__name__)


class ProblemReport:
    """Collects problems while reading one file; each reader returns None for an unusable value.

    A missing or empty value is reported once, where it should have been (the enclosing mapping
    or list), so readers return None for None without reporting it again.
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[ScheduleProblem] = []

    def add(self, where: str, problem: str) -> None:
        self.problems.append(ScheduleProblem(self.file, where, problem))

    def mapping(
        self, value: Any, where: str, required: Sequence[str], optional: Sequence[str] = ()
    ) -> dict[str, Any] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.add(where, f"must be a mapping, not {kind_of(value)}")
            return None
        for key in required:
            if value.get(key) is None:
                self.add(where, f"missing required key {key!r}")
        for key, item in value.items():
            # Catches typos such as after_day, which would otherwise silently use nothing.
            if key not in required and key not in optional:
                self.add(where, f"unknown key {key!r}")
            elif item is None and key in optional:
                self.add(where, f"key {key!r} has no value")
        return value

    def items(
        self, value: Any, where: str, key: str = "", *, allow_empty: bool = False
    ) -> list[Any] | None:
        subject = f"{key} " if key else ""
        if value is None:
            return None
        if not isinstance(value, list) or not (value or allow_empty):
            self.add(where, f"{subject}must be a non-empty list, not {kind_of(value)}")
            return None
        if None in value:
            self.add(where, f"{subject}has an empty entry")
            return None
        return value

    def integer(self, value: Any, where: str, key: str, minimum: int | None = None) -> int | None:
        if value is None:
            return None
        # bool is a subclass of int, but `yes` in YAML is never meant as a day count.
        if not isinstance(value, int) or isinstance(value, bool):
            self.add(where, f"{key} must be a whole number, not {kind_of(value)}")
            return None
        if minimum is not None and value < minimum:
            self.add(where, f"{key} must be at least {minimum}, not {value}")
            return None
        return value

    def clock_time(self, value: Any, where: str, key: str) -> time | None:
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            # YAML 1.1 reads an unquoted 10:00 as the base-60 number 600.
            self.add(where, f'{key} must be a quoted time like "10:00", not the number {value}')
            return None
        match = _HH_MM.match(value) if isinstance(value, str) else None
        if match is None or int(match[1]) > 23 or int(match[2]) > 59:
            self.add(where, f'{key} must be a time like "10:00", not {value!r}')
            return None
        return time(int(match[1]), int(match[2]))

    def code(self, value: Any, where: str, seen: set[str]) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not _CODE.match(value):
            self.add(where, f"code must be lowercase letters, digits and _, not {value!r}")
            return None
        if value in seen:
            self.add(where, f"duplicate code {value!r}")
            return None
        seen.add(value)
        return value

    def labels(self, value: Any, where: str) -> MappingProxyType[str, str] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.add(where, f"label must be a mapping of locale to text, not {kind_of(value)}")
            return None
        is_usable = True
        for locale in REQUIRED_LOCALES:
            if locale not in value:
                self.add(where, f"missing {locale} label")
                is_usable = False
        for locale, text in value.items():
            if not isinstance(text, str):
                self.add(where, f"{locale} label must be text, not {kind_of(text)}")
                is_usable = False
            elif not text.strip():
                self.add(where, f"{locale} label is empty")
                is_usable = False
        return MappingProxyType({str(k): v for k, v in value.items()}) if is_usable else None
