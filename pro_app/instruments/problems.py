"""Problems found in definition files, and typed access to parsed YAML that records them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml

T = TypeVar("T")

_TYPE_NAMES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    bool: "true or false",
    list: "a list",
    dict: "a mapping",
    float: "a number",
}


@dataclass(frozen=True)
class QuestionnaireProblem:
    """One thing wrong with a definition file: which file, where in it, and what."""

    file: str
    where: str
    problem: str

    def __str__(self) -> str:
        place = f"{self.where}: " if self.where else ""
        return f"{self.file}: {place}{self.problem}"


class QuestionnaireError(Exception):
    """A questionnaire or text pack cannot be used; `.problems` lists every reason."""

    def __init__(self, problems: list[QuestionnaireProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


class ProblemLog:
    """Collects the problems of one file, so that one run reports all of them."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[QuestionnaireProblem] = []

    def add(self, where: str, problem: str) -> None:
        """Record a problem at a place in the file ("" for the file as a whole)."""
        self.problems.append(QuestionnaireProblem(self.file, where, problem))

    def read_yaml(self, path: Path) -> Any:
        """The file's parsed content, or None after recording why it cannot be read."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            self.add("", f"cannot be read ({error})")
            return None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            self.add("", f"is not valid YAML: {_yaml_reason(error)}")
            return None
        if data is None:
            self.add("", "is empty")
        return data

    def mapping(self, value: Any, where: str) -> Mapping[Any, Any] | None:
        """Value if it is a mapping, otherwise None after recording a problem."""
        if isinstance(value, Mapping):
            return value
        self.add(where, f"must be a mapping, not {_describe(value)}")
        return None

    def field(
        self,
        data: Mapping[Any, Any],
        key: str,
        kind: type[T],
        where: str,
        *,
        required: bool = True,
    ) -> T | None:
        """data[key] if it has the expected type; otherwise None after recording a problem."""
        if key not in data or data[key] is None:
            if required:
                self.add(where, f"missing required key '{key}'")
            return None
        value = data[key]
        if not has_type(value, kind):
            self.add(where, f"'{key}' must be {_TYPE_NAMES[kind]}, not {_describe(value)}")
            return None
        if kind is str and not value.strip():
            self.add(where, f"'{key}' must not be empty")
            return None
        return cast(T, value)

    def unknown_keys(self, data: Mapping[Any, Any], allowed: set[str], where: str) -> None:
        """Record keys outside `allowed`, which are usually typos that would be ignored."""
        for key in data:
            if key not in allowed:
                self.add(where, f"unknown key '{key}'")


def has_type(value: Any, kind: type) -> bool:
    """isinstance, except that a YAML true/false is not accepted as an integer."""
    if kind is int and isinstance(value, bool):
        return False
    return isinstance(value, kind)


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    for kind, name in _TYPE_NAMES.items():
        if isinstance(value, kind):
            return f"{name} ({value!r})" if kind in (str, int, float) else name
    return f"{type(value).__name__} ({value!r})"


def _yaml_reason(error: yaml.YAMLError) -> str:
    # PyYAML's own message spans several lines; keep problems to one line each.
    mark = getattr(error, "problem_mark", None)
    reason = getattr(error, "problem", None) or str(error).splitlines()[0]
    if mark is not None:
        return f"{reason} at line {mark.line + 1}, column {mark.column + 1}"
    return str(reason)
