"""Sites and staff accounts: create, change, deactivate, unlock, reset passwords (all audited)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import LazyString
from sqlalchemy import func, update

from pro_app.extensions import db
from pro_app.i18n import _l, supported_locales
from pro_app.models import Role, Site, StaffSession, StaffUser
from pro_app.services import audit
from pro_app.services.contact_formats import normalize_email
from pro_app.services.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, hash_password

SITE_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,19}$")
# Staff of one site; analysts and admins normally work across sites.
SITE_BOUND_ROLES = frozenset({Role.NURSE, Role.INVESTIGATOR})
MAX_NAME_LENGTH = 200
# Names are shown on many pages and in exports: no markup, whatever the templates escape.
MARKUP = re.compile(r"[<>]")


class AccountError(ValueError):
    """Input that cannot become a site or an account; the message says why (and at which field)."""

    def __init__(self, message: str | LazyString, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def add_site(code: str, name: str, actor: audit.Actor = audit.SYSTEM) -> Site:
    """Create a site with a unique upper-case code."""
    code, name = code.strip().upper(), name.strip()
    if not SITE_CODE.match(code):
        raise AccountError(
            _l("The site code must be 1-20 capital letters, digits, '-' or '_' (e.g. MI01)."),
            "code",
        )
    if not name or len(name) > MAX_NAME_LENGTH:
        raise AccountError(_l("The site name must be 1-200 characters long."), "name")
    if MARKUP.search(name):
        raise AccountError(_l("Please do not use the characters < and >."), "name")
    if site_by_code(code) is not None:
        raise AccountError(_l("Site %(code)s already exists.", code=code), "code")
    site = Site(code=code, name=name)
    db.session.add(site)
    audit.record(actor, "site.create", site, site_id=None, after={"code": code, "name": name})
    return site


def site_by_code(code: str) -> Site | None:
    """The site with this code, if any."""
    return db.session.scalar(db.select(Site).where(Site.code == code.strip().upper()))


def add_staff(
    email: str,
    name: str,
    role: str,
    password: str,
    site: Site | None = None,
    language: str = "it",
    actor: audit.Actor = audit.SYSTEM,
) -> StaffUser:
    """Create a staff account; nurses and investigators must belong to a site."""
    normalized = normalize_email(email)
    if normalized is None or MARKUP.search(normalized):
        raise AccountError(_l("This is not a valid e-mail address."), "email")
    name = _checked_name(name) or normalized
    _check_role_and_site(role, site)
    _check_language(language)
    _check_password(password)
    email = normalized
    existing = db.session.scalar(
        db.select(func.count()).select_from(StaffUser).where(StaffUser.email == email)
    )
    if existing:
        raise AccountError(_l("An account with this e-mail address already exists."), "email")
    user = StaffUser(
        email=email,
        name=name,
        role=role,
        site=site,
        language=language,
        password_hash=hash_password(password),
    )
    db.session.add(user)
    audit.record(
        actor,
        "staff.create",
        user,
        site_id=site.id if site else None,
        after={**_profile(user), "active": True},  # the account id names it; no e-mail here
    )
    return user


@dataclass(frozen=True)
class AccountChanges:
    """What an administrator may change on an account (the e-mail identifies it and stays)."""

    name: str
    role: str
    site: Site | None
    language: str
    is_active: bool


def update_account(user: StaffUser, changes: AccountChanges, by: StaffUser, now: datetime) -> bool:
    """Apply the changes; False when nothing changed. An admin cannot demote or deactivate self."""
    name = _checked_name(changes.name)
    if not name:
        raise AccountError(_l("Enter a name."), "name")
    _check_role_and_site(changes.role, changes.site)
    _check_language(changes.language)
    if user.id == by.id and changes.role != user.role:
        raise AccountError(
            _l("You cannot change your own role: ask another administrator."), "role"
        )
    before = _profile(user)
    user.name, user.role, user.site, user.language = (
        name,
        changes.role,
        changes.site,
        changes.language,
    )
    after = _profile(user)
    changed = _diff(before, after)
    if changed:
        audit.record(
            audit.Actor.staff(by.id),
            "staff.update",
            user,
            site_id=user.site_id,
            before={key: before[key] for key in changed},
            after={key: after[key] for key in changed},
        )
    active_changed = set_active(user, changes.is_active, by, now)
    return bool(changed) or active_changed


def set_active(user: StaffUser, is_active: bool, by: StaffUser, now: datetime) -> bool:
    """Deactivate (ending every session at once) or reactivate; False when already so."""
    if user.is_active == is_active:
        return False
    if user.id == by.id and not is_active:
        raise AccountError(
            _l("You cannot deactivate your own account: ask another administrator."), "is_active"
        )
    user.is_active = is_active
    after: dict[str, Any] = {"active": is_active}
    if not is_active:
        after["sessions_revoked"] = revoke_sessions(user, now)
    audit.record(
        audit.Actor.staff(by.id),
        "staff.deactivate" if not is_active else "staff.reactivate",
        user,
        site_id=user.site_id,
        before={"active": not is_active},
        after=after,
    )
    return True


def reset_password(user: StaffUser, password: str, by: StaffUser, now: datetime) -> None:
    """Set a new password chosen by an administrator; the user's other sessions end."""
    _check_password(password)
    user.password_hash = hash_password(password)
    # Whoever knew the old password may be signed in somewhere: end those sessions. An admin
    # resetting their own password keeps the session in use.
    revoked = 0 if user.id == by.id else revoke_sessions(user, now)
    # Neither the password nor its hash ever enters the trail.
    audit.record(
        audit.Actor.staff(by.id),
        "staff.password_reset",
        user,
        site_id=user.site_id,
        after={"password": "changed", "sessions_revoked": revoked},
    )


def unlock(user: StaffUser, by: StaffUser) -> bool:
    """Clear a lockout and the failed sign-in count; False when there was nothing to clear."""
    if user.locked_until is None and user.failed_login_count == 0:
        return False
    before = {
        "locked_until": user.locked_until.isoformat() if user.locked_until else None,
        "failed_login_count": user.failed_login_count,
    }
    user.locked_until = None
    user.failed_login_count = 0
    audit.record(
        audit.Actor.staff(by.id),
        "staff.unlock",
        user,
        site_id=user.site_id,
        before=before,
        after={"locked_until": None, "failed_login_count": 0},
    )
    return True


def revoke_sessions(user: StaffUser, now: datetime) -> int:
    """End every live session of this user (copied cookies included); returns how many."""
    result = db.session.execute(
        update(StaffSession)
        .where(StaffSession.staff_user_id == user.id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def _profile(user: StaffUser) -> dict[str, Any]:
    return {
        "name": user.name,
        "role": user.role,
        "site": user.site.code if user.site else None,
        "language": user.language,
    }


def _diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [key for key in before if before[key] != after[key]]


def _checked_name(name: str) -> str:
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise AccountError(_l("The name must be at most 200 characters long."), "name")
    if MARKUP.search(name):
        raise AccountError(_l("Please do not use the characters < and >."), "name")
    return name


def _check_role_and_site(role: str, site: Site | None) -> None:
    if role not in set(Role):
        raise AccountError(_l("The role must be one of: %(roles)s.", roles=", ".join(Role)), "role")
    if role in SITE_BOUND_ROLES and site is None:
        raise AccountError(_l("Nurses and investigators must belong to a site."), "site")


def _check_language(language: str) -> None:
    if language not in supported_locales():
        raise AccountError(_l("Choose a language from the list."), "language")


def _check_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise AccountError(
            _l(
                "The password must be %(min)d-%(max)d characters long.",
                min=MIN_PASSWORD_LENGTH,
                max=MAX_PASSWORD_LENGTH,
            ),
            "password",
        )
