"""Sites and staff accounts."""

from __future__ import annotations

import re

from sqlalchemy import func

from pro_app.extensions import db
from pro_app.i18n import _l
from pro_app.models import Role, Site, StaffUser
from pro_app.services import audit
from pro_app.services.contact_formats import normalize_email
from pro_app.services.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, hash_password

SITE_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,19}$")
# Staff of one site; analysts and admins normally work across sites.
SITE_BOUND_ROLES = frozenset({Role.NURSE, Role.INVESTIGATOR})


class AccountError(ValueError):
    """Input that cannot become a site or an account; the message says why."""


def add_site(code: str, name: str, actor: audit.Actor = audit.SYSTEM) -> Site:
    """Create a site with a unique upper-case code."""
    code, name = code.strip().upper(), name.strip()
    if not SITE_CODE.match(code):
        raise AccountError(
            _l("The site code must be 1-20 capital letters, digits, '-' or '_' (e.g. MI01).")
        )
    if not name or len(name) > 200:
        raise AccountError(_l("The site name must be 1-200 characters long."))
    if site_by_code(code) is not None:
        raise AccountError(_l("Site %(code)s already exists.", code=code))
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
    if normalized is None:
        raise AccountError(_l("This is not a valid e-mail address."))
    if role not in set(Role):
        raise AccountError(_l("The role must be one of: %(roles)s.", roles=", ".join(Role)))
    if role in SITE_BOUND_ROLES and site is None:
        raise AccountError(_l("Nurses and investigators must belong to a site."))
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise AccountError(
            _l(
                "The password must be %(min)d-%(max)d characters long.",
                min=MIN_PASSWORD_LENGTH,
                max=MAX_PASSWORD_LENGTH,
            )
        )
    email = normalized
    existing = db.session.scalar(
        db.select(func.count()).select_from(StaffUser).where(StaffUser.email == email)
    )
    if existing:
        raise AccountError(_l("An account with this e-mail address already exists."))
    user = StaffUser(
        email=email,
        name=name.strip() or email,
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
        after={"role": role, "site": site.code if site else None},
    )
    return user
