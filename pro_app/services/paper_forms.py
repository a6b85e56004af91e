"""Paper questionnaires typed in by site staff: accepted even after the window, marked as paper.

The patient path (answering.store_answers / submit) refuses anything outside the window, and
rightly so. A paper form filled in at the clinic may reach the data entry days later, so this
is a separate, explicit path: only staff reach it, the date written on the paper is recorded,
and the audit trail says who typed it in.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import LazyString
from sqlalchemy import CursorResult, update

from pro_app.extensions import db
from pro_app.i18n import _l
from pro_app.instruments.pages import Page, paginate, parse_field_name
from pro_app.models import Assessment, AssessmentStatus, Mode, StaffUser
from pro_app.models.assessment import ANSWERABLE_STATUSES
from pro_app.services import audit
from pro_app.services.answering import upsert_answers
from pro_app.services.definitions import instrument_registry, trial_schedule
from pro_app.services.outbox import sync_patient_messages
from pro_app.services.scores import store_scores

# A form may be handed out at the visit just before its window opens.
DAYS_BEFORE_WINDOW = 7
# Statuses a paper form can still complete: waiting ones, and missed (it arrived late).
PAPER_STATUSES = (*ANSWERABLE_STATUSES, AssessmentStatus.MISSED)
# Recorded instead of a text pack: which printed version the patient had is not known here.
PAPER_TEXT = "paper"


class PaperFormError(ValueError):
    """A paper form that cannot be recorded; field names the form field concerned, if any."""

    def __init__(self, message: str | LazyString, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def accepts_paper(assessment: Assessment) -> bool:
    """Whether a paper form can still be entered for this assessment."""
    return assessment.status in PAPER_STATUSES


def paper_pages(assessment: Assessment) -> tuple[Page, ...]:
    """Every item of the time point, one page per questionnaire section (as on the paper)."""
    registry = instrument_registry()
    codes = trial_schedule().timepoint(assessment.timepoint).instruments
    longest = max(len(section.items) for code in codes for section in registry.get(code).sections)
    return paginate([registry.get(code) for code in codes], longest)


def earliest_paper_date(assessment: Assessment) -> date:
    """The earliest date a paper form of this assessment may carry."""
    return assessment.window_opens_on - timedelta(days=DAYS_BEFORE_WINDOW)


def local_today(assessment: Assessment, now: datetime) -> date:
    """Today in the patient's time zone (the date on the paper is a local date)."""
    return now.astimezone(ZoneInfo(assessment.patient.timezone)).date()


def paper_date_problem(
    assessment: Assessment, completed_on: date, now: datetime
) -> LazyString | None:
    """Why this date on the paper cannot be right, or None."""
    if completed_on > local_today(assessment, now):
        return _l("The date on the paper cannot be in the future.")
    earliest = earliest_paper_date(assessment)
    if completed_on < earliest:
        return _l(
            "The date on the paper cannot be before %(date)s "
            "(%(days)d days before the window opened).",
            date=earliest.strftime("%d/%m/%Y"),
            days=DAYS_BEFORE_WINDOW,
        )
    return None


def is_after_window(assessment: Assessment, completed_on: date) -> bool:
    """The paper was filled in after the window closed (recorded, but worth saying)."""
    return completed_on > assessment.window_closes_on


def record_paper_form(
    assessment: Assessment,
    values: Mapping[str, int | None],
    *,
    completed_on: date,
    staff_user: StaffUser,
    now: datetime,
) -> None:
    """Store every item (blank = skipped), stamp the assessment completed on paper, score it."""
    if not accepts_paper(assessment):
        raise PaperFormError(_l("This questionnaire is already completed or marked as not done."))
    problem = paper_date_problem(assessment, completed_on, now)
    if problem is not None:
        raise PaperFormError(problem, field="paper_completed_on")
    answers = _complete_answer_set(assessment, values)
    before = {"status": assessment.status, "mode": assessment.mode}
    # Conditional UPDATE: of two simultaneous entries (or an entry racing a patient's submit)
    # only one changes the row.
    claimed: CursorResult[Any] = db.session.execute(  # type: ignore[assignment]
        update(Assessment)
        .where(Assessment.id == assessment.id, Assessment.status.in_(PAPER_STATUSES))
        .values(
            status=AssessmentStatus.COMPLETED,
            completed_at=now,
            started_at=assessment.started_at or now,
            mode=Mode.PAPER,
            entered_by_id=staff_user.id,
            paper_completed_on=completed_on,
            text_packs=dict.fromkeys(_instrument_codes(assessment), PAPER_TEXT),
        )
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        raise PaperFormError(_l("This questionnaire is already completed or marked as not done."))
    # The paper is the record: it replaces anything the patient had started online.
    upsert_answers(assessment, answers, now)
    db.session.refresh(assessment)
    db.session.expire(assessment, ["answers", "scores"])
    store_scores(assessment, now)
    sync_patient_messages(assessment.patient, now)  # no reminder for what is done
    audit.record(
        audit.Actor.staff(staff_user.id),
        "assessment.paper_entry",
        assessment,
        site_id=assessment.patient.site_id,
        before=before,
        after={
            "timepoint": assessment.timepoint,
            "status": AssessmentStatus.COMPLETED,
            "mode": Mode.PAPER,
            "paper_completed_on": completed_on.isoformat(),
            "answers": answers,
        },
    )


def _instrument_codes(assessment: Assessment) -> tuple[str, ...]:
    return tuple(trial_schedule().timepoint(assessment.timepoint).instruments)


def _complete_answer_set(
    assessment: Assessment, values: Mapping[str, int | None]
) -> dict[str, int | None]:
    """Every field of the time point with its value (None = skipped); refuses anything else."""
    registry = instrument_registry()
    names = [name for page in paper_pages(assessment) for name in page.field_names]
    unknown = set(values) - set(names)
    if unknown:
        raise PaperFormError(_l("An answer was sent for a question that is not on this form."))
    for name, value in values.items():
        instrument, item = parse_field_name(name) or ("", 0)  # every name is a form field
        scale = registry.get(instrument).item(item).response_scale
        if value is not None and not scale.allows(value):
            raise PaperFormError(
                _l("An answer was sent with a value that is not one of the choices.")
            )
    return {name: values.get(name) for name in names}
