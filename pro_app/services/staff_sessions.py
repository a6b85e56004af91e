"""Staff sign-in: password check, lockout, server-side sessions with idle and absolute limits."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import LazyString

from pro_app.extensions import db
from pro_app.i18n import _l
from pro_app.models import StaffSession, StaffUser
from pro_app.services import audit
from pro_app.services.contact_formats import normalize_email
from pro_app.services.passwords import hash_password, needs_rehash, verify_password

# Compared against when the e-mail is unknown, so that both paths take the same time.
_DUMMY_HASH = hash_password("not-a-real-password")
# A staff session row is touched at most this often (not on every request).
LAST_SEEN_RESOLUTION = timedelta(minutes=1)


class SignInError(Exception):
    """Sign-in refused; the message says only what the user may know."""

    def __init__(self, message: str | LazyString) -> None:
        super().__init__(message)
        self.message = message


WRONG_CREDENTIALS = _l("The e-mail address or the password is not correct.")
LOCKED = _l(
    "Too many failed attempts: the account is locked for %(minutes)d minutes. "
    "If you have forgotten the password, ask an administrator."
)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _session_for(token: str) -> StaffSession | None:
    return db.session.scalar(db.select(StaffSession).where(StaffSession.token_hash == _hash(token)))


def check_credentials(email: str, password: str, now: datetime) -> StaffUser:
    """The account for these credentials; SignInError (and a counted failure) otherwise."""
    config = current_app.config
    normalized = normalize_email(email) or ""
    user = db.session.scalar(db.select(StaffUser).where(StaffUser.email == normalized))
    if user is None:
        verify_password(_DUMMY_HASH, password)
        raise SignInError(WRONG_CREDENTIALS)
    if user.locked_until is not None and user.locked_until > now:
        raise SignInError(LOCKED % {"minutes": config["STAFF_LOCKOUT_MINUTES"]})
    if not verify_password(user.password_hash, password) or not user.is_active:
        user.failed_login_count += 1
        if user.failed_login_count >= config["STAFF_MAX_FAILED_LOGINS"]:
            user.locked_until = now + timedelta(minutes=config["STAFF_LOCKOUT_MINUTES"])
            user.failed_login_count = 0
            audit.record(audit.SYSTEM, "staff.locked", user, site_id=user.site_id)
            db.session.commit()
            raise SignInError(LOCKED % {"minutes": config["STAFF_LOCKOUT_MINUTES"]})
        db.session.commit()
        raise SignInError(WRONG_CREDENTIALS)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.failed_login_count = 0
    user.locked_until = None
    user.last_login_at = now
    return user


def open_session(user: StaffUser, now: datetime) -> str:
    """A new server-side session for this user; returns the token to keep in the cookie."""
    token = secrets.token_urlsafe(32)
    db.session.add(
        StaffSession(staff_user=user, token_hash=_hash(token), created_at=now, last_seen_at=now)
    )
    audit.record(audit.Actor.staff(user.id), "staff.sign_in", user, site_id=user.site_id)
    return token


@dataclass(frozen=True)
class LoadedSession:
    user: StaffUser
    session: StaffSession


def load_session(token: str, now: datetime) -> LoadedSession | None:
    """The live session for this token: not revoked, not idle too long, not too old."""
    if not token or len(token) > 100:
        return None
    found = db.session.scalar(
        db.select(StaffSession).where(StaffSession.token_hash == _hash(token))
    )
    if found is None or found.revoked_at is not None:
        return None
    config = current_app.config
    idle = timedelta(minutes=config["STAFF_IDLE_MINUTES"])
    lifetime = timedelta(hours=config["STAFF_SESSION_HOURS"])
    user = found.staff_user
    if now - found.last_seen_at > idle or now - found.created_at > lifetime or not user.is_active:
        return None
    if now - found.last_seen_at >= LAST_SEEN_RESOLUTION:
        found.last_seen_at = now
        db.session.commit()
    return LoadedSession(user, found)


def revoke(token: str, now: datetime) -> None:
    """End a session for good: the same cookie never works again."""
    found = db.session.scalar(
        db.select(StaffSession).where(StaffSession.token_hash == _hash(token))
    )
    if found is not None and found.revoked_at is None:
        found.revoked_at = now
        audit.record(
            audit.Actor.staff(found.staff_user_id),
            "staff.sign_out",
            found.staff_user,
            site_id=found.staff_user.site_id,
        )
