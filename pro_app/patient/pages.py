"""Rendering questionnaire pages and handling their posts (kept apart from the route table)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flask import redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_wtf.csrf import CSRFError, validate_csrf
from wtforms import ValidationError

from pro_app.errors import render_error
from pro_app.extensions import db
from pro_app.i18n import _l
from pro_app.instruments.model import TextPack
from pro_app.instruments.pages import Page
from pro_app.models import Assessment, PatientLink
from pro_app.models.types import utcnow
from pro_app.patient import session as patient_session
from pro_app.services import answering, audit
from pro_app.services.definitions import instrument_registry

OUT_OF_DATE = _l("This page is out of date. Please open the questionnaire again from the start.")


@dataclass(frozen=True)
class Answering:
    """A patient with an open assessment: the link in use, the assessment and its pages."""

    link: PatientLink
    assessment: Assessment
    pages: tuple[Page, ...]


@dataclass(frozen=True)
class Option:
    value: int
    label: str


@dataclass(frozen=True)
class ItemView:
    name: str
    number: int
    text: str
    options: tuple[Option, ...]
    value: int | None
    is_blank: bool


def text_pack(instrument: str) -> TextPack:
    """The wording shown now: the page's language."""
    return instrument_registry().text(instrument, str(get_locale()))


def item_views(page: Page, values: Mapping[str, int | None], blanks: set[str]) -> list[ItemView]:
    """What the template needs for each item of the page."""
    instrument = instrument_registry().get(page.instrument)
    pack = text_pack(page.instrument)
    views = []
    for number, name in zip(page.items, page.field_names, strict=True):
        scale = instrument.item(number).response_scale
        labels = pack.options.get(scale.code, {})
        options = tuple(
            Option(
                value,
                f"{value} – {labels[value]}"
                if value in labels and scale.range > 3
                else labels.get(value, str(value)),
            )
            for value in range(scale.min, scale.max + 1)
        )
        views.append(
            ItemView(name, number, pack.items[number], options, values.get(name), name in blanks)
        )
    return views


def render_page(
    link: PatientLink,
    assessment: Assessment,
    pages: tuple[Page, ...],
    number: int,
    *,
    posted: Mapping[str, int] | None = None,
    blanks: list[str] | None = None,
    notice: str | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    """A questionnaire page: stored answers checked, posted ones (if any) on top."""
    page = pages[number - 1]
    values: dict[str, int | None] = dict(answering.stored_values(assessment))
    values.update(posted or {})
    pack = text_pack(page.instrument)
    answered_before = sum(len(p.items) for p in pages[: number - 1])
    total = sum(len(p.items) for p in pages)
    html = render_template(
        "patient/page.html",
        page=page,
        pages=pages,
        pack=pack,
        items=item_views(page, values, set(blanks or [])),
        first_item=answered_before + 1,
        last_item=answered_before + len(page.items),
        total_items=total,
        form_key=patient_session.make_form_key(link.id, assessment.id, number),
        confirm_blanks=bool(blanks),
        notice=notice,
        closes_on=assessment.window_closes_on,
    )
    return html, status


def render_review(
    link: PatientLink, assessment: Assessment, pages: tuple[Page, ...], status: int = 200
) -> ResponseReturnValue:
    """The review page with every unanswered question and the submit button."""
    missing = [
        (page, name, text_pack(page.instrument).items[int(name.rsplit("-", 1)[1])])
        for page, name in answering.unanswered(assessment, pages)
    ]
    html = render_template(
        "patient/review.html",
        missing=missing,
        last_page=len(pages),
        form_key=patient_session.make_form_key(link.id, assessment.id, len(pages) + 1),
        total_items=sum(len(p.items) for p in pages),
    )
    return html, status


def keyed_assessment(link: PatientLink, raw_key: object) -> tuple[Assessment, int] | None:
    """The assessment and page number a posted form key names, if it is this link's patient's."""
    key = patient_session.read_form_key(raw_key if isinstance(raw_key, str) else None)
    if key is None or key.link_id != link.id:
        return None
    assessment = db.session.get(Assessment, key.assessment_id)
    if assessment is None or assessment.patient_id != link.patient_id:
        return None
    return assessment, key.page


def _csrf_is_valid() -> bool:
    try:
        validate_csrf(request.form.get("csrf_token"))
    except (ValidationError, CSRFError):
        return False
    return True


def _restore_after_expiry(number: int | None) -> ResponseReturnValue:
    """Session or form token expired: show the page again with the posted answers kept."""
    now = utcnow()
    key = patient_session.read_form_key(request.form.get("form_key"))
    link = db.session.get(PatientLink, key.link_id) if key else None
    if key is None or link is None or not link.is_valid_at(now):
        return session_needed()
    if not patient_session.may_restore(key):
        return session_needed()
    # The signed key was only ever shown to this link's holder: it may resume the session
    # (on a clinic tablet, only the tablet session still under way).
    patient_session.start(link, now, tablet_assessment_id=patient_session.tablet_assessment_id())
    patient_session.remember_patient_context(link)
    db.session.commit()
    found = keyed_assessment(link, request.form.get("form_key"))
    if found is None or not answering.is_answerable(found[0], now):
        return redirect(url_for("patient.questionnaire"))
    assessment, keyed_page = found
    pages = answering.pages_for(assessment)
    if number is None or keyed_page != number or number > len(pages):
        return render_review(link, assessment, pages)
    try:
        posted = answering.parse_answers(pages[number - 1], request.form)
    except answering.AnswerError as error:
        return render_error(400, error.message)
    notice = _l(
        "Your session had expired, but your answers on this page are kept. "
        "Please check them and press “Continue” again."
    )
    return render_page(link, assessment, pages, number, posted=posted, notice=str(notice))


def _posting_context(number: int | None) -> Answering | ResponseReturnValue:
    """Link, assessment and pages of a page post (number None = the review page), or a refusal."""
    now = utcnow()
    link = patient_session.current_link(now)
    if link is None or not _csrf_is_valid():
        return _restore_after_expiry(number)
    patient_session.remember_patient_context(link)
    found = keyed_assessment(link, request.form.get("form_key"))
    if found is None:
        return render_error(400, OUT_OF_DATE)
    assessment, keyed_page = found
    if patient_session.tablet_assessment_id() not in (None, assessment.id):
        return render_error(400, OUT_OF_DATE)  # a tablet answers its one assessment only
    if not answering.is_answerable(assessment, now):
        return redirect(url_for("patient.questionnaire"))
    pages = answering.pages_for(assessment)
    if keyed_page != (len(pages) + 1 if number is None else number):
        return render_error(400, OUT_OF_DATE)
    return Answering(link, assessment, pages)


def handle_page_post(number: int) -> ResponseReturnValue:
    """Save the page, then go where the pressed button says."""
    context = _posting_context(number)
    if not isinstance(context, Answering):
        return context
    link, assessment, pages = context.link, context.assessment, context.pages
    page = pages[number - 1]
    action = request.form.get("action", "next")
    if action not in ("next", "back", "save"):
        return render_error(400)
    confirmed = request.form.get("confirm_blanks") == "1"
    try:
        result = answering.save_page(
            assessment,
            page,
            request.form,
            skip_blanks=action == "next" and confirmed,
            now=utcnow(),
            actor=audit.Actor.patient_link(link.id),
            mode=patient_session.answer_mode(),
        )
    except answering.AnswerError as error:
        db.session.rollback()
        return render_error(400, error.message)
    except answering.AssessmentClosed:
        db.session.rollback()
        return redirect(url_for("patient.questionnaire"))
    db.session.commit()
    if action == "back":
        return redirect(url_for("patient.page", number=max(1, number - 1)))
    if action == "save":
        if patient_session.tablet_assessment_id() is not None:
            return lock_tablet("saved")
        return redirect(url_for("patient.saved"))
    if result.blanks and not confirmed:
        return render_page(link, assessment, pages, number, blanks=result.blanks)
    if number >= len(pages):
        return redirect(url_for("patient.review"))
    return redirect(url_for("patient.page", number=number + 1))


def handle_review_post() -> ResponseReturnValue:
    """Submit (idempotent), or go back to the last page."""
    context = _posting_context(None)
    if not isinstance(context, Answering):
        return context
    link, assessment, pages = context.link, context.assessment, context.pages
    if request.form.get("action") == "back":
        return redirect(url_for("patient.page", number=len(pages)))
    if request.form.get("action") != "submit":
        return render_error(400)
    try:
        answering.submit(assessment, utcnow(), audit.Actor.patient_link(link.id))
    except answering.AssessmentClosed:
        db.session.rollback()
    db.session.commit()
    if patient_session.tablet_assessment_id() is not None:
        return lock_tablet("submitted")
    return redirect(url_for("patient.questionnaire"))


def lock_tablet(reason: str) -> ResponseReturnValue:
    """End a clinic-tablet session and show the locked screen ("return the device")."""
    patient_session.end(reason)
    return redirect(url_for("patient.tablet_locked"))


def session_needed() -> ResponseReturnValue:
    """No usable session: a clinic tablet locks; elsewhere, ask to open the link again."""
    if patient_session.tablet_assessment_id() is not None:
        return lock_tablet("closed")
    if patient_session.locked_reason() is not None:
        return redirect(url_for("patient.tablet_locked"))
    return render_template("patient/session_needed.html"), 401
