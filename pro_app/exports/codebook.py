"""The codebook: every variable of every export, labelled in Italian and English."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any

from flask_babel import force_locale

from pro_app.exports.variables import Dataset, Label, Variable, VarType
from pro_app.i18n import _l

LOCALES = ("it", "en")


def codebook_variables() -> tuple[Variable, ...]:
    text = VarType.STRING
    return (
        Variable("export", _l("Export the variable belongs to"), text),
        Variable("position", _l("Column number in the export"), VarType.INTEGER),
        Variable("variable", _l("Variable name (column header)"), text),
        Variable("label_it", _l("Label in Italian"), text),
        Variable("label_en", _l("Label in English"), text),
        Variable(
            "type", _l("Type: string, integer, number, date (ISO 8601), datetime (UTC)"), text
        ),
        Variable("values_it", _l("Allowed values and their meaning, in Italian"), text),
        Variable("values_en", _l("Allowed values and their meaning, in English"), text),
        Variable("missing_it", _l("When the cell is empty, in Italian"), text),
        Variable("missing_en", _l("When the cell is empty, in English"), text),
        Variable("reference", _l("Scoring definition or source"), text),
    )


def codebook_export(as_of: date) -> Dataset:
    """One row per variable of every export (the codebook describes itself too)."""
    return Dataset("codebook", codebook_variables(), _rows(as_of))


def _in(locale: str, label: Label | None) -> str | None:
    if label is None:
        return None
    with force_locale(locale):
        return str(label)


def _values_in(locale: str, values: Mapping[Any, Label]) -> str | None:
    if not values:
        return None
    with force_locale(locale):
        return "; ".join(f"{code} = {label}" for code, label in values.items())


def _rows(as_of: date) -> Iterator[tuple[Any, ...]]:
    from pro_app.exports.registry import KINDS, build_dataset
    from pro_app.exports.source import ExportFilter

    for kind in KINDS:
        dataset = build_dataset(kind, None, ExportFilter(), as_of)
        for position, variable in enumerate(dataset.variables, start=1):
            yield (
                kind,
                position,
                variable.name,
                _in("it", variable.label),
                _in("en", variable.label),
                str(variable.type),
                _values_in("it", variable.values),
                _values_in("en", variable.values),
                _in("it", variable.missing),
                _in("en", variable.missing),
                variable.reference,
            )
