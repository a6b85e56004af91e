"""Site scoping of patient queries: nurses and investigators see only their own site."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select

from pro_app.models import Patient, StaffUser


def scope_patients(query: Select[Any], user: StaffUser) -> Select[Any]:
    """Limit a query that involves Patient to the patients this user may see."""
    return query if user.sees_all_sites else query.where(Patient.site_id == user.site_id)
