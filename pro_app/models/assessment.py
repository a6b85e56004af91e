"""Assessments (one per patient and time point), their answers and their scores."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, Float, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pro_app.extensions import db
from pro_app.models.patient import Patient
from pro_app.models.types import UTCDateTime, one_of, utcnow
from pro_app.protocol.windows import AssessmentWindow


class AssessmentStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    MISSED = "missed"
    NOT_DONE = "not_done"


class Mode(enum.StrEnum):
    WEB = "web"
    TABLET = "tablet"
    PAPER = "paper"


# Still waiting for answers (the window may not have opened yet).
ANSWERABLE_STATUSES = (
    AssessmentStatus.SCHEDULED,
    AssessmentStatus.OPEN,
    AssessmentStatus.IN_PROGRESS,
)
FINAL_STATUSES = frozenset(
    {AssessmentStatus.COMPLETED, AssessmentStatus.MISSED, AssessmentStatus.NOT_DONE}
)


class Assessment(db.Model):  # type: ignore[name-defined]
    __tablename__ = "assessment"
    __table_args__ = (
        UniqueConstraint("patient_id", "timepoint"),
        CheckConstraint(one_of("status", AssessmentStatus), name="status_known"),
        CheckConstraint("mode IS NULL OR " + one_of("mode", Mode), name="mode_known"),
        CheckConstraint("window_opens_on <= window_closes_on", name="window_ordered"),
        CheckConstraint(
            "(status = 'completed') = (completed_at IS NOT NULL)", name="completion_stamped"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    timepoint: Mapped[str] = mapped_column(String(40))
    target_on: Mapped[date] = mapped_column(Date)
    window_opens_on: Mapped[date] = mapped_column(Date)
    window_closes_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default=AssessmentStatus.SCHEDULED)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mode: Mapped[str | None] = mapped_column(String(10))
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    paper_completed_on: Mapped[date | None] = mapped_column(Date)
    not_done_reason: Mapped[str | None] = mapped_column(String(500))
    # Which text pack (identity and version) the patient saw, per instrument.
    text_packs: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    patient: Mapped[Patient] = relationship()
    answers: Mapped[list[Answer]] = relationship(
        back_populates="assessment", cascade="all, delete-orphan"
    )
    scores: Mapped[list[Score]] = relationship(
        back_populates="assessment", cascade="all, delete-orphan"
    )

    @property
    def window(self) -> AssessmentWindow:
        """The window as the protocol's pure functions know it."""
        return AssessmentWindow(
            self.timepoint, self.target_on, self.window_opens_on, self.window_closes_on
        )

    @property
    def is_final(self) -> bool:
        """Completed, missed or not done: nothing more will be collected."""
        return self.status in FINAL_STATUSES


class Answer(db.Model):  # type: ignore[name-defined]
    """One item's answer; a row with no value is an explicit skip, no row means never shown."""

    __tablename__ = "answer"
    __table_args__ = (
        UniqueConstraint("assessment_id", "instrument", "item"),
        CheckConstraint("item BETWEEN 1 AND 999", name="item_number_plausible"),
        CheckConstraint("value IS NULL OR (value BETWEEN 0 AND 10)", name="value_plausible"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessment.id"), index=True)
    instrument: Mapped[str] = mapped_column(String(40))
    item: Mapped[int] = mapped_column()
    value: Mapped[int | None] = mapped_column()
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    assessment: Mapped[Assessment] = relationship(back_populates="answers")

    @property
    def is_skipped(self) -> bool:
        """The item was shown and deliberately left blank."""
        return self.value is None


class Score(db.Model):  # type: ignore[name-defined]
    """A scale score, unrounded; null when the missing-data rule says so (never zero)."""

    __tablename__ = "score"
    __table_args__ = (
        UniqueConstraint("assessment_id", "instrument", "scale"),
        CheckConstraint("value IS NULL OR (value >= 0 AND value <= 100)", name="value_in_range"),
        CheckConstraint("items_answered BETWEEN 0 AND items_in_scale", name="items_consistent"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessment.id"), index=True)
    instrument: Mapped[str] = mapped_column(String(40))
    scale: Mapped[str] = mapped_column(String(20))
    value: Mapped[float | None] = mapped_column(Float(precision=53))
    items_answered: Mapped[int] = mapped_column()
    items_in_scale: Mapped[int] = mapped_column()
    scoring_version: Mapped[str] = mapped_column(String(100))
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    assessment: Mapped[Assessment] = relationship(back_populates="scores")
