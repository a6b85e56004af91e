"""The CONSORT-PRO compliance table: forms expected, received, on time, late and missed.

An assessment is expected once its window has closed (or once it was completed), unless the
patient had withdrawn or died by the window's last day without completing it; those are
counted as off study. Windows still open are pending, never missed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class Timing(StrEnum):
    """When a completed form was filled in, against its window (local dates)."""

    IN_WINDOW = "in_window"
    EARLY = "early"  # a paper form handed out at the visit before the window
    LATE = "late"


def timing(completed_on: date, opens_on: date, closes_on: date) -> Timing:
    """Whether a completion date falls in the window, before it or after it."""
    if completed_on < opens_on:
        return Timing.EARLY
    if completed_on > closes_on:
        return Timing.LATE
    return Timing.IN_WINDOW


@dataclass(frozen=True)
class AssessmentFacts:
    """What the table needs to know about one assessment."""

    timepoint: str
    arm: str
    opens_on: date
    closes_on: date
    is_completed: bool
    completed_on: date | None
    off_study_on: date | None  # withdrawal or death date, if any


@dataclass
class ComplianceRow:
    """One time point × arm (arm None = all arms)."""

    timepoint: str
    arm: str | None
    expected: int = 0
    received: int = 0
    on_time: int = 0
    early: int = 0
    late: int = 0
    missed: int = 0
    pending: int = 0
    off_study: int = 0

    @property
    def counts(self) -> tuple[int, ...]:
        """expected, received, on_time, early, late, missed, pending, off_study (table order)."""
        return (
            self.expected,
            self.received,
            self.on_time,
            self.early,
            self.late,
            self.missed,
            self.pending,
            self.off_study,
        )

    @property
    def rate(self) -> float | None:
        """Received / expected, in percent; None when nothing is expected yet."""
        return 100.0 * self.received / self.expected if self.expected else None

    def count(self, facts: AssessmentFacts, as_of: date) -> None:
        """Add one assessment to this row's counts."""
        if facts.is_completed:
            self.expected += 1
            self.received += 1
            done_on = facts.completed_on or facts.closes_on
            kind = timing(done_on, facts.opens_on, facts.closes_on)
            if kind is Timing.LATE:
                self.late += 1
            elif kind is Timing.EARLY:
                self.early += 1
            else:
                self.on_time += 1
        elif facts.off_study_on is not None and facts.off_study_on <= facts.closes_on:
            self.off_study += 1
        elif facts.closes_on < as_of:
            self.expected += 1
            self.missed += 1
        else:
            self.pending += 1


def compliance_table(
    assessments: Iterable[AssessmentFacts],
    timepoints: Iterable[str],
    arms: Iterable[str],
    as_of: date,
) -> list[ComplianceRow]:
    """Rows per time point: one per arm, then the total over arms (arm None)."""
    arm_codes = list(arms)
    rows: dict[tuple[str, str | None], ComplianceRow] = {}
    for timepoint in timepoints:
        for arm in [*arm_codes, None]:
            rows[(timepoint, arm)] = ComplianceRow(timepoint, arm)
    for facts in assessments:
        for arm in (facts.arm, None):
            row = rows.get((facts.timepoint, arm))
            if row is not None:
                row.count(facts, as_of)
    return list(rows.values())
