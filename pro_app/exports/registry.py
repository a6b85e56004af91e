"""Every export by name: `build_dataset(kind, ...)` is the one way the pages, the command line
and the API get data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from flask_babel import LazyString

from pro_app.exports.audit import audit_export
from pro_app.exports.items import items_export
from pro_app.exports.outcomes import compliance_export, deterioration_export
from pro_app.exports.scores import scores_long, scores_wide
from pro_app.exports.source import ExportFilter
from pro_app.exports.variables import Dataset
from pro_app.i18n import _l
from pro_app.models import StaffUser

KINDS: dict[str, LazyString] = {
    "scores": _l("Scores, long (one row per scale)"),
    "scores-wide": _l("Scores, wide (one row per time point)"),
    "items": _l("Item-level answers"),
    "codebook": _l("Codebook"),
    "compliance": _l("Compliance per time point and arm"),
    "deterioration": _l("Time to deterioration"),
    "audit": _l("Audit trail"),
}

Builder = Callable[[StaffUser | None, ExportFilter, date], Dataset]


def _builders() -> dict[str, Builder]:
    from pro_app.exports.codebook import codebook_export

    return {
        "scores": lambda user, filters, _as_of: scores_long(user, filters),
        "scores-wide": lambda user, filters, _as_of: scores_wide(user, filters),
        "items": lambda user, filters, _as_of: items_export(user, filters),
        "codebook": lambda _user, _filters, as_of: codebook_export(as_of),
        "compliance": compliance_export,
        "deterioration": lambda user, filters, _as_of: deterioration_export(user, filters),
        "audit": lambda user, filters, _as_of: audit_export(user, filters),
    }


def build_dataset(kind: str, user: StaffUser | None, filters: ExportFilter, as_of: date) -> Dataset:
    """The export of this kind for this user (None = the command line: every site)."""
    try:
        builder = _builders()[kind]
    except KeyError:
        raise KeyError(f"unknown export '{kind}' (known: {', '.join(KINDS)})") from None
    return builder(user, filters, as_of)
