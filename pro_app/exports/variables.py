"""Export variables: name, label, type, allowed values and missing codes, for every format.

One description serves the CSV header, the SPSS/Stata variable and value labels and the codebook,
so a column can never be documented differently from how it is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeAlias


class VarType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"  # floating point, unrounded
    DATE = "date"  # a calendar date (ISO 8601 in CSV)
    DATETIME = "datetime"  # an instant in UTC (ISO 8601 in CSV)


# Anything whose str() is the label in the current locale: a lazy gettext string, a label from
# the schedule file or a text pack (they pick the locale when rendered, so one Variable serves the
# Italian and the English codebook).
Label: TypeAlias = object


@dataclass(frozen=True)
class Variable:
    """One column of an export."""

    name: str
    label: Label
    type: VarType = VarType.STRING
    # Allowed values and what each means (codes as written in the file).
    values: Mapping[Any, Label] = field(default_factory=dict)
    # When the cell is empty, and why (the reason is in another column, never a number).
    missing: Label | None = None
    # Where the value comes from, e.g. the scoring definition behind a score.
    reference: str | None = None


@dataclass(frozen=True)
class Dataset:
    """A whole export: its variables, then rows as tuples in the same order, produced lazily."""

    kind: str
    variables: tuple[Variable, ...]
    rows: Iterable[tuple[Any, ...]]
    note: Label | None = None  # e.g. "GI.NET21 scoring is provisional", shown by every format

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(variable.name for variable in self.variables)

    def records(self) -> Iterator[dict[str, Any]]:
        """Rows as name → value mappings (for JSON)."""
        names = self.names
        for row in self.rows:
            yield dict(zip(names, row, strict=True))


def flag(name: str, label: Label, yes: Label, no: Label, missing: Label | None = None) -> Variable:
    """A 0/1 variable with both values labelled."""
    return Variable(name, label, VarType.INTEGER, {1: yes, 0: no}, missing)


def coded(
    name: str, label: Label, codes: Iterable[tuple[str, Label]], missing: Label | None = None
) -> Variable:
    """A string variable with a closed set of codes."""
    return Variable(name, label, VarType.STRING, dict(codes), missing)
