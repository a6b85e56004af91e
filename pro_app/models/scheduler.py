"""The lease that lets exactly one scheduler process send messages at a time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from pro_app.extensions import db
from pro_app.models.types import UTCDateTime


class SchedulerLease(db.Model):  # type: ignore[name-defined]
    """One row per named job; its holder renews it each pass, others wait until it expires."""

    __tablename__ = "scheduler_lease"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_summary: Mapped[str | None] = mapped_column(String(500))
