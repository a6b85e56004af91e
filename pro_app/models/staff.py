"""Staff accounts: nurses, investigators, analysts and admins."""

from __future__ import annotations

import enum
from datetime import datetime

from flask import g
from flask_login import UserMixin
from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pro_app.extensions import db
from pro_app.models.site import Site
from pro_app.models.types import UTCDateTime, one_of, utcnow


class Role(enum.StrEnum):
    NURSE = "nurse"
    INVESTIGATOR = "investigator"
    ANALYST = "analyst"
    ADMIN = "admin"


class StaffUser(UserMixin, db.Model):  # type: ignore[name-defined]
    __tablename__ = "staff_user"
    __table_args__ = (
        CheckConstraint(one_of("role", Role), name="role_known"),
        CheckConstraint("failed_login_count >= 0", name="failed_login_count_not_negative"),
        CheckConstraint("email = lower(email)", name="email_lowercase"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("site.id"), index=True)
    language: Mapped[str] = mapped_column(String(5), default="it")
    is_active: Mapped[bool] = mapped_column(default=True)
    failed_login_count: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    session_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    site: Mapped[Site | None] = relationship()

    def get_id(self) -> str | None:
        """Flask-Login's id: this request's staff-session token, so sign-out revokes the cookie."""
        token = g.get("staff_session_token")
        return str(token) if token else None

    def has_role(self, *roles: str) -> bool:
        """Whether the account has one of these roles."""
        return self.role in roles

    @property
    def sees_all_sites(self) -> bool:
        """Staff without a site (analysts, admins, coordinators) see every site."""
        return self.site_id is None

    def __repr__(self) -> str:
        return f"<StaffUser {self.id} {self.role}>"


class StaffSession(db.Model):  # type: ignore[name-defined]
    """A signed-in browser: revoked at sign-out, expired by idleness or age."""

    __tablename__ = "staff_session"
    __table_args__ = (CheckConstraint("length(token_hash) = 64", name="token_hash_is_sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    staff_user: Mapped[StaffUser] = relationship()
