"""A patient answering an assessment: what is open, where to resume, saving pages, submitting."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import LazyString, get_locale
from sqlalchemy import CursorResult, update
from sqlalchemy.dialects import postgresql, sqlite

from pro_app.extensions import db
from pro_app.i18n import _l
from pro_app.instruments.pages import Page, paginate, parse_field_name
from pro_app.models import Answer, Assessment, AssessmentStatus, Mode, Patient
from pro_app.models.assessment import ANSWERABLE_STATUSES
from pro_app.services import audit
from pro_app.services.definitions import instrument_registry, trial_schedule
from pro_app.services.outbox import sync_patient_messages
from pro_app.services.scores import store_scores


class AnswerError(ValueError):
    """Posted answers that cannot be stored (forged field, impossible value); nothing is saved."""

    def __init__(self, message: str | LazyString) -> None:
        super().__init__(message)
        self.message = message


class AssessmentClosed(Exception):
    """The assessment was submitted, missed or closed: no answer can change any more."""


def is_answerable(assessment: Assessment, now: datetime) -> bool:
    """Not final, and now inside its window (plus a short grace for a patient mid-page)."""
    if assessment.status not in ANSWERABLE_STATUSES:
        return False
    tz = ZoneInfo(assessment.patient.timezone)
    window = assessment.window
    grace = timedelta(minutes=current_app.config["PATIENT_SUBMIT_GRACE_MINUTES"])
    return window.opens_at(tz) <= now < window.closes_at(tz) + grace


def patient_assessments(patient: Patient) -> list[Assessment]:
    """The patient's assessments in schedule order."""
    return list(
        db.session.scalars(
            db.select(Assessment)
            .where(Assessment.patient_id == patient.id)
            .order_by(Assessment.window_opens_on)
        )
    )


class LinkState(enum.StrEnum):
    """What the personal link shows at a given moment."""

    ANSWERING = "answering"  # a questionnaire is open
    DONE = "done"  # the open window's questionnaire is already submitted
    WAITING = "waiting"  # nothing open now; the next window opens later
    FINISHED = "finished"  # nothing more to answer (all windows over, withdrawn, deceased)


@dataclass(frozen=True)
class LinkView:
    state: LinkState
    assessment: Assessment | None = None


def link_view(patient: Patient, now: datetime) -> LinkView:
    """Which state the patient's link is in now, with the assessment concerned."""
    if not patient.is_active:
        return LinkView(LinkState.FINISHED)
    tz = ZoneInfo(patient.timezone)
    assessments = patient_assessments(patient)
    for assessment in assessments:
        if is_answerable(assessment, now):
            return LinkView(LinkState.ANSWERING, assessment)
    for assessment in assessments:
        window = assessment.window
        if assessment.status == AssessmentStatus.COMPLETED and window.contains(now, tz):
            return LinkView(LinkState.DONE, assessment)
    for assessment in assessments:
        if assessment.status in ANSWERABLE_STATUSES and assessment.window.opens_at(tz) > now:
            return LinkView(LinkState.WAITING, assessment)
    return LinkView(LinkState.FINISHED)


def pages_for(assessment: Assessment) -> tuple[Page, ...]:
    """The pages of this assessment's time point, with the configured number of items a page."""
    registry = instrument_registry()
    codes = trial_schedule().timepoint(assessment.timepoint).instruments
    return paginate(
        [registry.get(code) for code in codes], current_app.config["PATIENT_ITEMS_PER_PAGE"]
    )


def stored_values(assessment: Assessment) -> dict[str, int | None]:
    """Field name → stored value (None = skipped) for every item with a stored row."""
    return {f"{answer.instrument}-{answer.item}": answer.value for answer in assessment.answers}


def resume_page(assessment: Assessment, pages: tuple[Page, ...]) -> int:
    """The first page with an item never answered nor skipped; len(pages) + 1 means review."""
    stored = stored_values(assessment)
    for page in pages:
        if any(name not in stored for name in page.field_names):
            return page.number
    return len(pages) + 1


def unanswered(assessment: Assessment, pages: tuple[Page, ...]) -> list[tuple[Page, str]]:
    """(page, field name) of every item without an answer (skipped or never shown)."""
    stored = stored_values(assessment)
    return [(page, name) for page in pages for name in page.field_names if stored.get(name) is None]


@dataclass(frozen=True)
class SaveResult:
    saved: dict[str, int]
    blanks: list[str]


def save_page(
    assessment: Assessment,
    page: Page,
    posted: Mapping[str, str],
    *,
    skip_blanks: bool,
    now: datetime,
    actor: audit.Actor,
    mode: str = Mode.WEB,
) -> SaveResult:
    """Store the page's answers; with skip_blanks, its blank items become explicit skips."""
    values = parse_answers(page, posted)
    blanks = [name for name in page.field_names if name not in values]
    already = stored_values(assessment)
    skips = [name for name in blanks if name not in already or already[name] is None]
    write: dict[str, int | None] = dict(values)
    if skip_blanks:
        write |= dict.fromkeys(skips)
    store_answers(assessment, write, now=now, actor=actor, mode=mode)
    return SaveResult(saved=values, blanks=[name for name in blanks if already.get(name) is None])


def parse_answers(page: Page, posted: Mapping[str, str]) -> dict[str, int]:
    """The page's answered items from posted form data; AnswerError for anything not possible."""
    registry = instrument_registry()
    values: dict[str, int] = {}
    for name, raw in posted.items():
        parsed = parse_field_name(name)
        if parsed is None:
            continue  # buttons, tokens and other form fields
        if name not in page.field_names:
            raise AnswerError(_l("An answer was sent for a question that is not on this page."))
        scale = registry.get(parsed[0]).item(parsed[1]).response_scale
        # isascii: isdigit alone lets through "²" and other digits that int() refuses.
        if not (raw.isascii() and raw.isdigit()) or not scale.allows(int(raw)):
            raise AnswerError(_l("An answer was sent with a value that is not one of the choices."))
        values[name] = int(raw)
    return values


def store_answers(
    assessment: Assessment,
    values: Mapping[str, int | None],
    *,
    now: datetime,
    actor: audit.Actor,
    mode: str = Mode.WEB,
) -> None:
    """Store answers of an answerable assessment (None = skipped) and mark it in progress."""
    if not is_answerable(assessment, now):
        raise AssessmentClosed
    if not values:
        return
    _lock_answerable(assessment)
    upsert_answers(assessment, values, now)
    if assessment.status != AssessmentStatus.IN_PROGRESS:
        assessment.status = AssessmentStatus.IN_PROGRESS
        assessment.started_at = assessment.started_at or now
    assessment.mode = mode
    assessment.text_packs = _text_packs_seen(assessment)
    audit.record(
        actor,
        "answers.save",
        assessment,
        site_id=assessment.patient.site_id,
        after=dict(values),
    )


def _lock_answerable(assessment: Assessment) -> None:
    """Lock the assessment for this transaction; AssessmentClosed if it was submitted meanwhile."""
    # A no-op conditional UPDATE takes the row lock (PostgreSQL) or the write lock (SQLite)
    # before any answer is written, so a submission at the same moment either waits and scores
    # these answers too, or has already completed and this save is refused: answers never
    # change after scoring. A SELECT could not: SQLite ignores FOR UPDATE.
    locked: CursorResult[Any] = db.session.execute(  # type: ignore[assignment]
        update(Assessment)
        .where(Assessment.id == assessment.id, Assessment.status.in_(ANSWERABLE_STATUSES))
        .values(status=Assessment.status)
        .execution_options(synchronize_session=False)
    )
    if locked.rowcount != 1:
        raise AssessmentClosed


def upsert_answers(assessment: Assessment, values: Mapping[str, int | None], now: datetime) -> None:
    """Insert or update answers by field name (None = skipped), in one race-safe statement."""
    if not values:
        return  # a multi-row INSERT needs at least one row
    insert = postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
    rows = []
    for name, value in values.items():
        instrument, item = name.rsplit("-", 1)
        rows.append(
            {
                "assessment_id": assessment.id,
                "instrument": instrument,
                "item": int(item),
                "value": value,
                "answered_at": now,
            }
        )
    statement = insert(Answer).values(rows)
    db.session.execute(
        statement.on_conflict_do_update(
            index_elements=["assessment_id", "instrument", "item"],
            set_={"value": statement.excluded.value, "answered_at": statement.excluded.answered_at},
        )
    )
    db.session.expire(assessment, ["answers"])


def _text_packs_seen(assessment: Assessment) -> dict[str, str]:
    registry = instrument_registry()
    locale = _display_locale(assessment.patient)
    return {
        code: f"{registry.text(code, locale).identity} ({locale})"
        for code in trial_schedule().timepoint(assessment.timepoint).instruments
    }


def _display_locale(patient: Patient) -> str:
    locale = get_locale()
    return str(locale) if locale else patient.language


def submit(assessment: Assessment, now: datetime, actor: audit.Actor) -> bool:
    """Complete the assessment once: stamp, score, lock; False if it was already submitted."""
    if assessment.status == AssessmentStatus.COMPLETED:
        return False
    if not is_answerable(assessment, now):
        raise AssessmentClosed
    # The conditional UPDATE is the lock: of two simultaneous submits only one changes a row.
    claimed: CursorResult[Any] = db.session.execute(  # type: ignore[assignment]
        update(Assessment)
        .where(Assessment.id == assessment.id, Assessment.status.in_(ANSWERABLE_STATUSES))
        .values(status=AssessmentStatus.COMPLETED, completed_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        return False
    db.session.refresh(assessment)
    store_scores(assessment, now)
    sync_patient_messages(assessment.patient, now)  # no reminder for what is done
    audit.record(
        actor,
        "assessment.submit",
        assessment,
        site_id=assessment.patient.site_id,
        after={"timepoint": assessment.timepoint, "status": AssessmentStatus.COMPLETED},
    )
    return True
