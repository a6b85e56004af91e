"""The staff menu and role names, for every staff template."""

from __future__ import annotations

from flask import current_app
from flask_babel import LazyString
from flask_login import current_user

from pro_app.i18n import _l
from pro_app.staff import bp

ROLE_LABELS = {
    "nurse": _l("Nurse"),
    "investigator": _l("Investigator"),
    "analyst": _l("Analyst"),
    "admin": _l("Administrator"),
}

# (endpoint, label, roles that see it)
MENU: tuple[tuple[str, LazyString, tuple[str, ...]], ...] = (
    ("staff.worklist", _l("Worklist"), ("nurse", "investigator", "analyst", "admin")),
    ("staff.enrol", _l("Enrol a patient"), ("nurse", "investigator")),
    ("staff.audit_trail", _l("Audit trail"), ("investigator", "admin")),
    ("analyst.index", _l("Analysis"), ("investigator", "analyst", "admin")),
    ("analyst.api_token_list", _l("API tokens"), ("investigator", "analyst", "admin")),
    ("staff.admin_accounts", _l("Accounts and sites"), ("admin",)),
    ("staff.admin_metrics", _l("System status"), ("admin",)),
)


@bp.app_context_processor
def _navigation_helpers() -> dict[str, object]:
    def staff_menu() -> list[tuple[str, LazyString, tuple[str, ...]]]:
        if not current_user.is_authenticated:
            return []
        return [
            entry
            for entry in MENU
            if current_user.role in entry[2] and entry[0] in current_app.view_functions
        ]

    def role_label(role: str) -> str:
        return str(ROLE_LABELS.get(role, role))

    return {"staff_menu": staff_menu, "role_label": role_label}
