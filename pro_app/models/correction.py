"""Corrections of submitted answers: every change keeps the value it replaced and the reason."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pro_app.extensions import db
from pro_app.models.assessment import Assessment
from pro_app.models.staff import StaffUser
from pro_app.models.types import UTCDateTime, utcnow


class AnswerCorrection(db.Model):  # type: ignore[name-defined]
    """One correction of one item; null values mean "no answer". Rows are only ever added."""

    __tablename__ = "answer_correction"
    __table_args__ = (
        CheckConstraint("item BETWEEN 1 AND 999", name="item_number_plausible"),
        CheckConstraint(
            "original_value IS NULL OR (original_value BETWEEN 0 AND 10)",
            name="original_value_plausible",
        ),
        CheckConstraint(
            "new_value IS NULL OR (new_value BETWEEN 0 AND 10)", name="new_value_plausible"
        ),
        CheckConstraint("length(reason) > 0", name="reason_given"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessment.id"), index=True)
    instrument: Mapped[str] = mapped_column(String(40))
    item: Mapped[int] = mapped_column()
    # The value just before this correction: the first correction of an item holds the value
    # as submitted, so a chain of corrections reads back to the original.
    original_value: Mapped[int | None] = mapped_column()
    new_value: Mapped[int | None] = mapped_column()
    reason: Mapped[str] = mapped_column(String(1000))
    corrected_by_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    corrected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    assessment: Mapped[Assessment] = relationship()
    corrected_by: Mapped[StaffUser] = relationship()
