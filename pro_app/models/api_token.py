"""API tokens: a staff member's key for the read-only JSON API; only its SHA-256 is stored."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pro_app.extensions import db
from pro_app.models.staff import StaffUser
from pro_app.models.types import UTCDateTime, utcnow


class ApiToken(db.Model):  # type: ignore[name-defined]
    """One token of one staff member, until revoked or expired."""

    __tablename__ = "api_token"
    __table_args__ = (
        CheckConstraint("length(token_hash) = 64", name="token_hash_is_sha256"),
        CheckConstraint("length(name) BETWEEN 1 AND 100", name="name_length"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The token's first characters, so that its owner can tell tokens apart; never enough to use.
    prefix: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    staff_user: Mapped[StaffUser] = relationship()

    def is_valid_at(self, instant: datetime) -> bool:
        """Whether the token opens the API at this instant."""
        return self.revoked_at is None and (self.expires_at is None or instant < self.expires_at)

    def status_at(self, instant: datetime) -> str:
        """ "active", "revoked" or "expired"."""
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.is_valid_at(instant) else "expired"

    def __repr__(self) -> str:
        return f"<ApiToken {self.id} {self.prefix}>"
