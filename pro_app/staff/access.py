"""Who may see what: roles per page, and every patient query scoped to the user's site."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort
from flask_login import current_user

from pro_app.extensions import db, login_manager
from pro_app.models import Patient, Role, StaffUser

F = TypeVar("F", bound=Callable[..., Any])

# Staff who work with patients (contact details, links, status changes).
CLINICAL_ROLES = (Role.NURSE, Role.INVESTIGATOR, Role.ADMIN)


def staff_required(*roles: str) -> Callable[[F], F]:
    """Only signed-in staff with one of these roles (any role if none given)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if roles and not current_user.has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate


def staff() -> StaffUser:
    """The signed-in staff member (inside a staff_required view)."""
    user: StaffUser = current_user._get_current_object()
    return user


def patient_or_404(patient_id: int) -> Patient:
    """A patient of the user's sites; 404 otherwise (another site's patients do not exist here)."""
    patient = db.session.get(Patient, patient_id)
    user = staff()
    if patient is None or not (user.sees_all_sites or patient.site_id == user.site_id):
        abort(404)
    return patient


def may_read_contacts(user: StaffUser) -> bool:
    """Contact details are for the patient's site staff, never for analysts."""
    return user.has_role(*CLINICAL_ROLES)
