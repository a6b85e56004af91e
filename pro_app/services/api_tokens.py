"""API tokens: created and revoked by their owner, checked on every API request.

The raw token is shown once and never stored; the database keeps its SHA-256 (a lookup by hash
tells an attacker nothing about other tokens) and its first characters to tell tokens apart.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from flask_babel import LazyString

from pro_app.extensions import db
from pro_app.i18n import _l
from pro_app.models import ApiToken, Role, StaffUser
from pro_app.services import audit

TOKEN_PREFIX = "pro_"  # noqa: S105 (marks our tokens in logs and secret scanners)
TOKEN_BYTES = 32  # 256 random bits
PREFIX_LENGTH = 8
NAME_MAX_LENGTH = 100
# Longer than any token we issue, shorter than anything worth hashing.
MAX_TOKEN_LENGTH = 100
# Staff whose work includes data exports; nurses see patients, not datasets.
API_ROLES = (Role.ANALYST, Role.INVESTIGATOR, Role.ADMIN)
# A token row is written at most this often, not on every request of a script.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiTokenError(ValueError):
    """A token that cannot be created as asked; the message says why, `field` where."""

    def __init__(self, message: str | LazyString, field: str | None = None) -> None:
        super().__init__(str(message))
        self.message = message
        self.field = field


def hash_token(raw: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def may_use_api(user: StaffUser) -> bool:
    """Whether this account's role may hold and use API tokens."""
    return user.has_role(*API_ROLES)


def create_token(
    user: StaffUser, name: str, now: datetime, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """A new token for the user; returns the row and the raw token, which is never seen again."""
    name = name.strip()
    if not name:
        raise ApiTokenError(_l("Enter a name for the token."), "name")
    if len(name) > NAME_MAX_LENGTH:
        raise ApiTokenError(
            _l("The name must be at most %(max)d characters long.", max=NAME_MAX_LENGTH), "name"
        )
    if not user.is_active or not may_use_api(user):
        raise ApiTokenError(_l("Your role does not give access to the API."))
    raw = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    token = ApiToken(
        staff_user=user,
        name=name,
        token_hash=hash_token(raw),
        prefix=raw[:PREFIX_LENGTH],
        created_at=now,
        expires_at=expires_at,
    )
    db.session.add(token)
    audit.record(
        audit.Actor.staff(user.id),
        "api_token.create",
        token,
        site_id=user.site_id,
        after={"owner_id": user.id, "name": name, "prefix": token.prefix},
    )
    return token, raw


def revoke_token(user: StaffUser, token_id: int, now: datetime) -> ApiToken | None:
    """Revoke one of the user's tokens (admins: anyone's); None if there is no such token."""
    token = db.session.get(ApiToken, token_id)
    if token is None or not (token.staff_user_id == user.id or user.has_role(Role.ADMIN)):
        return None  # another user's token is as unknown as a missing one
    if token.revoked_at is None:
        token.revoked_at = now
        audit.record(
            audit.Actor.staff(user.id),
            "api_token.revoke",
            token,
            site_id=token.staff_user.site_id,
            after={"owner_id": token.staff_user_id, "name": token.name, "prefix": token.prefix},
        )
    return token


def find_token(raw: str, now: datetime) -> ApiToken | None:
    """The valid token of an active account for this raw token, whatever the account's role."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > MAX_TOKEN_LENGTH:
        return None
    digest = hash_token(raw)
    token = db.session.scalar(db.select(ApiToken).where(ApiToken.token_hash == digest))
    if token is None or not hmac.compare_digest(token.token_hash, digest):
        return None
    if not token.is_valid_at(now) or not token.staff_user.is_active:
        return None
    return token


def authenticate(raw: str, now: datetime) -> StaffUser | None:
    """The account a request with this token acts for; None if the token must be refused."""
    token = find_token(raw, now)
    if token is None or not may_use_api(token.staff_user):
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        token.last_used_at = now
        db.session.flush()
    return token.staff_user


def tokens_of(user: StaffUser) -> list[ApiToken]:
    """The user's tokens, newest first (revoked ones too, so the list explains itself)."""
    return list(
        db.session.scalars(
            db.select(ApiToken)
            .where(ApiToken.staff_user_id == user.id)
            .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
        )
    )


def active_tokens_of_others(user: StaffUser, now: datetime) -> list[ApiToken]:
    """Other accounts' tokens that still work (for administrators, who may revoke them)."""
    tokens = db.session.scalars(
        db.select(ApiToken)
        .where(ApiToken.staff_user_id != user.id, ApiToken.revoked_at.is_(None))
        .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    )
    return [token for token in tokens if token.is_valid_at(now)]
