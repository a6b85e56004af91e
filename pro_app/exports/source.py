"""The rows exports read: assessments with their patient, scoped to a user and filtered.

Plain column tuples (no ORM objects) in chunks, so a 10,000-patient export runs in constant
memory; scores, answers and corrections are fetched per chunk in one query each.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Select

from pro_app.analysis.compliance import AssessmentFacts, Timing, timing
from pro_app.extensions import db
from pro_app.models import Answer, Assessment, AssessmentStatus, Patient, Score, Site, StaffUser
from pro_app.services.definitions import trial_schedule
from pro_app.services.site_scope import scope_patients

CHUNK = 500


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@dataclass(frozen=True)
class ExportFilter:
    """What the analyst narrowed the export to; None means everything in scope."""

    site: str | None = None  # site code
    arm: str | None = None
    timepoint: str | None = None
    instrument: str | None = None
    randomized_from: date | None = None
    randomized_to: date | None = None


@dataclass(frozen=True)
class AssessmentRecord:
    """One patient × time point, with everything an export row says about it."""

    assessment_id: int
    study_code: str
    site: str
    arm: str
    randomized_on: date
    patient_status: str
    withdrawn_on: date | None
    died_on: date | None
    timezone: str
    timepoint: str
    target_on: date
    opens_on: date
    closes_on: date
    status: str
    completed_at: datetime | None
    paper_completed_on: date | None
    mode: str | None
    text_packs: dict[str, Any] | None

    @property
    def is_completed(self) -> bool:
        return self.status == AssessmentStatus.COMPLETED

    @property
    def completed_on(self) -> date | None:
        """The local date the form was filled in (the paper's own date for paper forms)."""
        if self.paper_completed_on is not None:
            return self.paper_completed_on
        if self.completed_at is None:
            return None
        return self.completed_at.astimezone(_zone(self.timezone)).date()

    @property
    def days_from_randomization(self) -> int | None:
        completed_on = self.completed_on
        return None if completed_on is None else (completed_on - self.randomized_on).days

    @property
    def timing(self) -> Timing | None:
        completed_on = self.completed_on
        if completed_on is None:
            return None
        return timing(completed_on, self.opens_on, self.closes_on)

    @property
    def target_day(self) -> int:
        return trial_schedule().timepoint(self.timepoint).target_day

    @property
    def off_study_on(self) -> date | None:
        dates = [day for day in (self.withdrawn_on, self.died_on) if day is not None]
        return min(dates) if dates else None

    def facts(self) -> AssessmentFacts:
        """What the compliance table needs."""
        return AssessmentFacts(
            self.timepoint,
            self.arm,
            self.opens_on,
            self.closes_on,
            self.is_completed,
            self.completed_on,
            self.off_study_on,
        )

    def text_pack(self, instrument: str) -> str | None:
        return (self.text_packs or {}).get(instrument)


COLUMNS = (
    Assessment.id,
    Patient.study_code,
    Site.code,
    Patient.arm,
    Patient.randomized_on,
    Patient.status,
    Patient.withdrawn_on,
    Patient.died_on,
    Patient.timezone,
    Assessment.timepoint,
    Assessment.target_on,
    Assessment.window_opens_on,
    Assessment.window_closes_on,
    Assessment.status,
    Assessment.completed_at,
    Assessment.paper_completed_on,
    Assessment.mode,
    Assessment.text_packs,
)


def patient_query(user: StaffUser | None, filters: ExportFilter) -> Select[Any]:
    """Patients in the user's scope (None = the command line: every site), filtered."""
    query: Select[Any] = db.select(Patient.id).join(Site, Patient.site_id == Site.id)
    if user is not None:
        query = scope_patients(query, user)
    if filters.site:
        query = query.where(Site.code == filters.site)
    if filters.arm:
        query = query.where(Patient.arm == filters.arm)
    if filters.randomized_from:
        query = query.where(Patient.randomized_on >= filters.randomized_from)
    if filters.randomized_to:
        query = query.where(Patient.randomized_on <= filters.randomized_to)
    return query


def assessment_chunks(
    user: StaffUser | None, filters: ExportFilter, *, all_timepoints: bool = False
) -> Iterator[list[AssessmentRecord]]:
    """The filtered assessments by study code and time, CHUNK at a time."""
    patients = patient_query(user, filters).subquery()
    query = (
        db.select(*COLUMNS)
        .join(Patient, Assessment.patient_id == Patient.id)
        .join(Site, Patient.site_id == Site.id)
        .where(Patient.id.in_(db.select(patients.c.id)))
        .order_by(Patient.study_code, Assessment.target_on, Assessment.id)
    )
    if filters.timepoint and not all_timepoints:
        query = query.where(Assessment.timepoint == filters.timepoint)
    known = {timepoint.code for timepoint in trial_schedule().timepoints}
    result = db.session.execute(query.execution_options(yield_per=CHUNK))
    for partition in result.partitions():
        # A time point dropped from the schedule file cannot be labelled or scored; skip it.
        yield [AssessmentRecord(*row) for row in partition if row[9] in known]


class StoredScore(NamedTuple):
    """A stored score's columns (plain tuples: exports read hundreds of thousands)."""

    value: float | None
    items_answered: int
    items_in_scale: int
    scoring_version: str


def scores_for(ids: Sequence[int]) -> dict[int, dict[tuple[str, str], StoredScore]]:
    """assessment id → (instrument, scale) → stored score."""
    found: dict[int, dict[tuple[str, str], StoredScore]] = defaultdict(dict)
    if ids:
        statement = db.select(
            Score.assessment_id,
            Score.instrument,
            Score.scale,
            Score.value,
            Score.items_answered,
            Score.items_in_scale,
            Score.scoring_version,
        ).where(Score.assessment_id.in_(ids))
        for assessment_id, instrument, scale, *columns in db.session.execute(statement):
            found[assessment_id][(instrument, scale)] = StoredScore(*columns)
    return found


def answers_for(ids: Sequence[int]) -> dict[int, dict[tuple[str, int], int | None]]:
    """assessment id → (instrument, item) → value (None = skipped); absent = never shown."""
    found: dict[int, dict[tuple[str, int], int | None]] = defaultdict(dict)
    if ids:
        statement = db.select(
            Answer.assessment_id, Answer.instrument, Answer.item, Answer.value
        ).where(Answer.assessment_id.in_(ids))
        for assessment_id, instrument, item, value in db.session.execute(statement):
            found[assessment_id][(instrument, item)] = value
    return found
