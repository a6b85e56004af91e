"""Load and check questionnaires/eligibility.yaml: the checklist confirmed at enrolment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from pro_app.protocol.model import DEFAULT_LOCALE, REQUIRED_LOCALES
from pro_app.protocol.problems import ProblemReport, ScheduleProblem, kind_of

INCLUSION = "inclusion"
EXCLUSION = "exclusion"
KINDS = (INCLUSION, EXCLUSION)

# The file's problems have the same shape as the schedule's: file, where, problem.
EligibilityProblem = ScheduleProblem

_TOP_KEYS = ("version", "criteria")
_CRITERION_KEYS = ("code", "kind", *REQUIRED_LOCALES)


@dataclass(frozen=True)
class Criterion:
    """One line of the checklist; `number` counts within its kind (inclusion 1.., exclusion 1..)."""

    code: str
    kind: str
    number: int
    texts: Mapping[str, str]

    def text(self, locale: str) -> str:
        """The wording in a locale such as "en" or "en_GB" (Italian when it has none)."""
        language = locale.replace("-", "_").split("_")[0]
        return self.texts.get(locale) or self.texts.get(language) or self.texts[DEFAULT_LOCALE]

    @property
    def eligible_answer(self) -> bool:
        """The answer that keeps the patient eligible: yes to an inclusion, no to an exclusion."""
        return self.kind == INCLUSION


@dataclass(frozen=True)
class Checklist:
    """The whole eligibility file: criteria in the order they are asked."""

    version: int
    criteria: tuple[Criterion, ...]

    def of_kind(self, kind: str) -> tuple[Criterion, ...]:
        """The inclusion or the exclusion criteria, in order."""
        return tuple(criterion for criterion in self.criteria if criterion.kind == kind)

    def unanswered(self, answers: Mapping[str, bool | None]) -> list[Criterion]:
        """Criteria without a yes or no."""
        return [c for c in self.criteria if not isinstance(answers.get(c.code), bool)]

    def failed(self, answers: Mapping[str, bool | None]) -> list[Criterion]:
        """Criteria whose answer makes the patient ineligible (unanswered ones are not listed)."""
        return [
            c
            for c in self.criteria
            if isinstance(answers.get(c.code), bool) and answers[c.code] != c.eligible_answer
        ]


class EligibilityError(Exception):
    """The eligibility file cannot be used; `.problems` lists every reason."""

    def __init__(self, problems: Sequence[EligibilityProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


def find_checklist_problems(path: str | PathLike[str]) -> list[EligibilityProblem]:
    """Every problem in an eligibility file; an empty list means it loads."""
    return _read(Path(path))[1]


def load_checklist(path: str | PathLike[str]) -> Checklist:
    """The checklist in a file; EligibilityError listing all problems if it has any."""
    checklist, problems = _read(Path(path))
    if checklist is None:
        raise EligibilityError(problems)
    return checklist


def _read(path: Path) -> tuple[Checklist | None, list[EligibilityProblem]]:
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
        checklist = _parse(data, report)
        if checklist is not None and not report.problems:
            return checklist, []
    return None, report.problems


def _parse(data: Any, report: ProblemReport) -> Checklist | None:
    top = report.mapping(data, "", _TOP_KEYS)
    if top is None:
        return None
    version = report.integer(top.get("version"), "version", "version", minimum=1)
    entries = report.items(top.get("criteria"), "criteria")
    if entries is None:
        return None
    criteria: list[Criterion] = []
    seen: set[str] = set()
    counts = dict.fromkeys(KINDS, 0)
    for index, entry in enumerate(entries):
        criterion = _parse_criterion(entry, index, report, seen, counts)
        if criterion is not None:
            criteria.append(criterion)
    if version is None or len(criteria) != len(entries):
        return None
    return Checklist(version, tuple(criteria))


def _parse_criterion(
    entry: Any, index: int, report: ProblemReport, seen: set[str], counts: dict[str, int]
) -> Criterion | None:
    code_value = entry.get("code") if isinstance(entry, dict) else None
    is_named = isinstance(code_value, str) and bool(code_value)
    where = f"criterion {code_value}" if is_named else f"criteria[{index + 1}]"
    fields = report.mapping(entry, where, _CRITERION_KEYS)
    if fields is None:
        return None
    code = report.code(fields.get("code"), where, seen)
    kind = fields.get("kind")
    if kind is not None and kind not in KINDS:
        report.add(where, f"kind must be inclusion or exclusion, not {kind!r}")
        kind = None
    texts = _parse_texts(fields, where, report)
    if code is None or kind is None or texts is None:
        return None
    counts[kind] += 1
    return Criterion(code, kind, counts[kind], texts)


def _parse_texts(
    fields: dict[str, Any], where: str, report: ProblemReport
) -> MappingProxyType[str, str] | None:
    is_usable = True
    for locale in REQUIRED_LOCALES:
        text = fields.get(locale)
        if text is None:
            is_usable = False  # reported by mapping() as a missing key
        elif not isinstance(text, str):
            report.add(where, f"{locale} text must be text, not {kind_of(text)}")
            is_usable = False
        elif not text.strip():
            report.add(where, f"{locale} text is empty")
            is_usable = False
    if not is_usable:
        return None
    return MappingProxyType({locale: fields[locale].strip() for locale in REQUIRED_LOCALES})
