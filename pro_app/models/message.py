"""The outbox: every invitation, reminder and link message is a row before it is sent."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pro_app.extensions import db
from pro_app.models.assessment import Assessment
from pro_app.models.patient import Channel, Patient
from pro_app.models.types import UTCDateTime, one_of, utcnow


class MessageStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Message(db.Model):  # type: ignore[name-defined]
    __tablename__ = "message"
    __table_args__ = (
        CheckConstraint(one_of("status", MessageStatus), name="status_known"),
        CheckConstraint(one_of("channel", Channel), name="channel_known"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        Index("ix_message_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    assessment_id: Mapped[int | None] = mapped_column(ForeignKey("assessment.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(10))
    # patient, time point, kind and channel: the same message can never be planned twice.
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    scheduled_for: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default=MessageStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    patient: Mapped[Patient] = relationship()
    assessment: Mapped[Assessment | None] = relationship()
