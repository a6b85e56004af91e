"""Correcting a patient's randomization date: re-plan only what has not happened yet."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from pro_app.extensions import db
from pro_app.i18n import _l
from pro_app.models import Assessment, AssessmentStatus, Patient
from pro_app.protocol.windows import AssessmentWindow, participation_ends_at, plan_windows
from pro_app.services import audit
from pro_app.services.definitions import trial_schedule
from pro_app.services.links import active_link
from pro_app.services.outbox import sync_patient_messages
from pro_app.services.patient_status import StatusChangeError, require_followed, require_reason

# The same limit as at enrolment, counted from the enrolment date.
OLDEST_BEFORE_ENROLMENT = timedelta(days=365)


@dataclass(frozen=True)
class Correction:
    """What a correction did: the time points moved and those left as they were."""

    before: date
    after: date
    moved: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def correct_randomization_date(
    patient: Patient, new_date: date, reason: str, now: datetime, actor: audit.Actor
) -> Correction:
    """Set a new randomization date and move the windows that have not opened yet.

    Only assessments still scheduled, never started and whose window has not opened at `now`
    get new target and window dates (from plan_windows, with the patient's enrolment date).
    Assessments already open, in progress, completed, missed or not done keep their dates, even
    when the new randomization date would put their protocol window elsewhere: what the patient
    was asked, and when, is history. Unsent messages then follow the new plan.
    """
    require_followed(patient)
    cleaned = require_reason(reason)
    tz = ZoneInfo(patient.timezone)
    enrolled_on = patient.enrolled_at.astimezone(tz).date()
    if new_date > now.astimezone(tz).date():
        raise StatusChangeError(_l("The randomization date cannot be in the future."), "new_date")
    if new_date < enrolled_on - OLDEST_BEFORE_ENROLMENT:
        raise StatusChangeError(
            _l("The randomization date cannot be more than a year before enrolment."), "new_date"
        )
    if new_date == patient.randomized_on:
        raise StatusChangeError(_l("This is already the randomization date."), "new_date")

    windows = {w.timepoint: w for w in plan_windows(trial_schedule(), new_date, enrolled_on)}
    assessments = list(
        db.session.scalars(
            db.select(Assessment)
            .where(Assessment.patient_id == patient.id)
            .order_by(Assessment.target_on, Assessment.id)
        )
    )
    old_date = patient.randomized_on
    correction = Correction(before=old_date, after=new_date)
    moves: dict[str, dict[str, str]] = {}
    for assessment in assessments:
        window = windows.get(assessment.timepoint)
        if window is None or window == assessment.window:
            continue  # not in the schedule any more, or nothing to change
        if _has_not_started(assessment, now, tz):
            moves[assessment.timepoint] = {
                "from": _describe(assessment.window),
                "to": _describe(window),
            }
            assessment.target_on = window.target_on
            assessment.window_opens_on = window.opens_on
            assessment.window_closes_on = window.closes_on
            correction.moved.append(assessment.timepoint)
        else:
            correction.kept.append(assessment.timepoint)
    patient.randomized_on = new_date
    _extend_link(patient, assessments, tz)
    sync_patient_messages(patient, now)
    audit.record(
        actor,
        "patient.correct_randomization",
        patient,
        site_id=patient.site_id,
        before={"randomized_on": old_date.isoformat()},
        after={"randomized_on": new_date.isoformat(), "moved": moves, "kept": correction.kept},
        reason=cleaned,
    )
    return correction


def _has_not_started(assessment: Assessment, now: datetime, tz: ZoneInfo) -> bool:
    # The stored status lags until the next dispatcher pass: the window's own dates decide.
    return (
        assessment.status == AssessmentStatus.SCHEDULED
        and assessment.started_at is None
        and now < assessment.window.opens_at(tz)
    )


def _describe(window: AssessmentWindow) -> str:
    return f"{window.target_on} ({window.opens_on}..{window.closes_on})"


def _extend_link(patient: Patient, assessments: list[Assessment], tz: ZoneInfo) -> None:
    # The link stays valid until the last window closes, wherever that window now lies.
    link = active_link(patient)
    if link is None:
        return
    ends = [participation_ends_at(trial_schedule(), patient.randomized_on, tz)]
    ends += [assessment.window.closes_at(tz) for assessment in assessments]
    link.expires_at = max(ends)
