"""What a worklist request asks for, and the filter every worklist statement shares.

The worklist (services/worklist.py) and its failed-message section (services/failed_messages.py)
both narrow their statements the same way: the user's sites, the chosen site, the study-code
search. That narrowing lives here, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select

from pro_app.models import Patient, StaffUser
from pro_app.protocol.work_states import WorkFilter
from pro_app.services.site_scope import scope_patients

PAGE_SIZE = 50
SEARCH_MAX_LENGTH = 40


@dataclass(frozen=True)
class WorklistQuery:
    """What the user asked for; the search is plain text, matched anywhere in the study code."""

    section: WorkFilter = WorkFilter.OPEN
    timepoint: str | None = None
    site_id: int | None = None
    search: str = ""
    page: int = 1


def escape_like(text: str) -> str:
    """The text with LIKE wildcards escaped, so that '%' or '_' match only themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filtered(statement: Select[Any], user: StaffUser, query: WorklistQuery) -> Select[Any]:
    """The statement narrowed to the user's sites, the chosen site and the study-code search."""
    statement = scope_patients(statement, user)
    if user.sees_all_sites and query.site_id is not None:
        statement = statement.where(Patient.site_id == query.site_id)
    search = query.search.strip()[:SEARCH_MAX_LENGTH]
    if search:
        statement = statement.where(
            Patient.study_code.ilike(f"%{escape_like(search)}%", escape="\\")
        )
    return statement
