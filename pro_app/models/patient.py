"""Patients (known by study code only), their contact details and personal links."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pro_app.extensions import db
from pro_app.models.site import Site
from pro_app.models.types import UTCDateTime, one_of, utcnow


class PatientStatus(enum.StrEnum):
    ACTIVE = "active"
    WITHDRAWN = "withdrawn"
    DECEASED = "deceased"
    COMPLETED = "completed"


class Channel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"


class Patient(db.Model):  # type: ignore[name-defined]
    """The pseudonymised patient: everything here may appear in analyses, nothing identifies."""

    __tablename__ = "patient"
    __table_args__ = (
        CheckConstraint(one_of("status", PatientStatus), name="status_known"),
        CheckConstraint(one_of("language", ("it", "en")), name="language_supported"),
        CheckConstraint(
            "(status = 'withdrawn') = (withdrawn_on IS NOT NULL)", name="withdrawal_dated"
        ),
        CheckConstraint("(status = 'deceased') = (died_on IS NOT NULL)", name="death_dated"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    study_code: Mapped[str] = mapped_column(String(40), unique=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"), index=True)
    arm: Mapped[str] = mapped_column(String(40))
    randomized_on: Mapped[date] = mapped_column(Date)
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    enrolled_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    language: Mapped[str] = mapped_column(String(5), default="it")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Rome")
    status: Mapped[str] = mapped_column(String(20), default=PatientStatus.ACTIVE)
    is_reminders_paused: Mapped[bool] = mapped_column(default=False)
    withdrawn_on: Mapped[date | None] = mapped_column(Date)
    withdrawal_reason: Mapped[str | None] = mapped_column(String(500))
    died_on: Mapped[date | None] = mapped_column(Date)
    eligibility: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    eligibility_confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    eligibility_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    site: Mapped[Site] = relationship()
    contact: Mapped[PatientContact | None] = relationship(
        back_populates="patient", uselist=False, cascade="all, delete-orphan"
    )

    @property
    def is_active(self) -> bool:
        """Whether the patient is still followed (messages may be sent)."""
        return self.status == PatientStatus.ACTIVE

    def __repr__(self) -> str:
        return f"<Patient {self.study_code}>"


class PatientContact(db.Model):  # type: ignore[name-defined]
    """Identifying details, readable by the patient's site staff only; never exported or logged."""

    __tablename__ = "patient_contact"
    __table_args__ = (
        CheckConstraint(one_of("preferred_channel", Channel), name="preferred_channel_known"),
        CheckConstraint(
            "birth_year IS NULL OR (birth_year BETWEEN 1900 AND 2100)", name="birth_year_plausible"
        ),
    )

    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(254))
    mobile: Mapped[str | None] = mapped_column(String(32))
    preferred_channel: Mapped[str] = mapped_column(String(10), default=Channel.EMAIL)
    birth_year: Mapped[int | None] = mapped_column()

    patient: Mapped[Patient] = relationship(back_populates="contact")


class PatientLink(db.Model):  # type: ignore[name-defined]
    """A personal link: only the SHA-256 of its token is kept; one active link per patient."""

    __tablename__ = "patient_link"
    __table_args__ = (
        CheckConstraint("length(token_hash) = 64", name="token_hash_is_sha256"),
        Index(
            "uq_patient_link_one_active",
            "patient_id",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The token is HMAC(LINK_SECRET, salt): reminders can repeat the link without the database
    # ever holding it. Null for a link whose token cannot be derived again.
    salt: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    patient: Mapped[Patient] = relationship()

    def is_valid_at(self, instant: datetime) -> bool:
        """Whether the link opens the questionnaire at this instant."""
        return self.revoked_at is None and instant < self.expires_at
