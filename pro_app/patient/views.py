"""Patient routes. The link page changes nothing on GET; answers are saved on every move."""

from __future__ import annotations

from datetime import datetime

from flask import (
    Blueprint,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_wtf.csrf import CSRFError, validate_csrf
from wtforms import ValidationError

from pro_app.errors import CSRF_FAILED, render_error
from pro_app.extensions import csrf, db, limiter
from pro_app.models import PatientLink
from pro_app.models.types import utcnow
from pro_app.patient import pages as page_views
from pro_app.patient import session as patient_session
from pro_app.patient.forms import StartForm
from pro_app.services import answering, audit
from pro_app.services.definitions import trial_schedule

bp = Blueprint("patient", __name__, template_folder="templates")


def _link_rate_limit() -> str:
    return str(current_app.config["PATIENT_LINK_RATE_LIMIT"])


# Opening and starting share one counter per address: guessing tokens is slow whichever is tried.
link_rate_limit = limiter.shared_limit(_link_rate_limit, scope="patient-link")


@bp.get("/p/<token>")
@link_rate_limit
def welcome(token: str) -> ResponseReturnValue:
    """The link's first page: one start button; reading it changes nothing (mail scanners)."""
    link = patient_session.find_valid_link(token, utcnow())
    if link is not None:
        patient_session.remember_patient_context(link)  # only to greet in the right language
    return render_template("patient/welcome.html", form=StartForm(), token=token)


@bp.post("/p/<token>")
@csrf.exempt  # the form checks its token itself, after the rate limit has counted the attempt
@link_rate_limit
def start(token: str) -> ResponseReturnValue:
    """Start a session for a valid link and go to a URL without the token."""
    form = StartForm()
    form_is_valid = form.validate_on_submit()
    if form.csrf_token.errors:
        return render_error(400, CSRF_FAILED)
    now = utcnow()
    link = patient_session.find_valid_link(token, now)
    if link is None or not form_is_valid or not form.second_factor_matches(link):
        # Unknown, revoked, expired and wrong year of birth look exactly the same.
        return render_template("patient/link_invalid.html"), 404
    patient_session.start(link, now)
    audit.record(audit.Actor.patient_link(link.id), "link.open", link, site_id=link.patient.site_id)
    db.session.commit()
    return redirect(url_for(".questionnaire"))


@bp.get("/q")
def questionnaire() -> ResponseReturnValue:
    """Whatever the link should show now: a page to answer, thanks, the next date, or the end."""
    now = utcnow()
    link = _session_link(now)
    if link is None:
        return page_views.session_needed()
    view = answering.link_view(link.patient, now)  # reads only: nothing to commit
    if _tablet_is_over(view):
        return _end_tablet(view)
    if view.state == answering.LinkState.ANSWERING and view.assessment is not None:
        pages = answering.pages_for(view.assessment)
        number = answering.resume_page(view.assessment, pages)
        if number > len(pages):
            return redirect(url_for(".review"))
        return redirect(url_for(".page", number=number))
    return render_template(f"patient/{view.state}.html", assessment=view.assessment)


@bp.get("/q/page/<int:number>")
def page(number: int) -> ResponseReturnValue:
    """One page of questions with the answers already stored."""
    context = _answering_context()
    if not isinstance(context, page_views.Answering):
        return context
    link, assessment, pages = context.link, context.assessment, context.pages
    if not 1 <= number <= len(pages):
        return redirect(url_for(".questionnaire"))
    return page_views.render_page(link, assessment, pages, number)


@bp.post("/q/page/<int:number>")
@csrf.exempt  # checked below, so that an expired token re-renders the answers instead of failing
def save_page(number: int) -> ResponseReturnValue:
    """Save the page's answers, then move back, forward, or out ("save and finish later")."""
    return page_views.handle_page_post(number)


@bp.get("/q/review")
def review() -> ResponseReturnValue:
    """The last page: unanswered questions with links back, and the one submit button."""
    context = _answering_context()
    if not isinstance(context, page_views.Answering):
        return context
    link, assessment, pages = context.link, context.assessment, context.pages
    return page_views.render_review(link, assessment, pages)


@bp.post("/q/review")
@csrf.exempt  # checked in handle_review_post, like the pages
def submit() -> ResponseReturnValue:
    """Submit once (a double tap or a replay stores one submission), then thank the patient."""
    return page_views.handle_review_post()


@bp.post("/q/answer")
@csrf.exempt  # the token comes in the X-CSRFToken header and is checked here
def autosave() -> ResponseReturnValue:
    """Save one tapped answer at once (JavaScript); the page post saves it again anyway."""
    now = utcnow()
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return jsonify(status="invalid"), 400
    link = _session_link(now)
    if link is None:
        return jsonify(status="session_expired"), 401
    try:
        validate_csrf(request.headers.get("X-CSRFToken"))
    except (ValidationError, CSRFError):
        return jsonify(status="csrf"), 400
    found = page_views.keyed_assessment(link, payload.get("form_key"))
    pages = answering.pages_for(found[0]) if found else ()
    if found is None or not 1 <= found[1] <= len(pages):
        return jsonify(status="stale"), 409
    if patient_session.tablet_assessment_id() not in (None, found[0].id):
        return jsonify(status="stale"), 409  # a tablet answers its one assessment only
    assessment, page_def = found[0], pages[found[1] - 1]
    name, value = payload.get("name"), payload.get("value")
    if not isinstance(name, str) or not isinstance(value, str) or name not in page_def.field_names:
        return jsonify(status="invalid"), 400  # one of the page's own questions, or nothing
    try:
        answering.save_page(
            assessment,
            page_def,
            {name: value},
            skip_blanks=False,
            now=now,
            actor=audit.Actor.patient_link(link.id),
            mode=patient_session.answer_mode(),
        )
    except answering.AnswerError as error:
        db.session.rollback()
        return jsonify(status="invalid", message=str(error.message)), 400
    except answering.AssessmentClosed:
        db.session.rollback()
        return jsonify(status="closed"), 409
    db.session.commit()
    return jsonify(status="saved")


@bp.get("/q/saved")
def saved() -> ResponseReturnValue:
    """After "save and finish later": the answers are kept; until when the link stays open."""
    context = _answering_context()
    if not isinstance(context, page_views.Answering):
        return context
    if patient_session.tablet_assessment_id() is not None:
        return page_views.lock_tablet("saved")
    assessment = context.assessment
    return render_template("patient/saved.html", assessment=assessment)


@bp.post("/q/leave")
def leave() -> ResponseReturnValue:
    """Forget the patient on this device (a shared phone or a clinic computer)."""
    if patient_session.tablet_assessment_id() is not None:
        return page_views.lock_tablet("left")
    patient_session.end()
    return render_template("patient/left.html")


@bp.get("/q/locked")
def tablet_locked() -> ResponseReturnValue:
    """The end of a clinic-tablet session: nothing of the answers, only "return the device"."""
    reason = patient_session.locked_reason()
    if reason is None:
        return redirect(url_for(".questionnaire"))
    patient_session.remember_locked_context()
    return render_template("patient/tablet_locked.html", reason=reason)


def _session_link(now: datetime) -> PatientLink | None:
    link = patient_session.current_link(now)
    if link is not None:
        patient_session.remember_patient_context(link)
    return link


def _tablet_is_over(view: answering.LinkView) -> bool:
    """In tablet mode, anything but the handed-over assessment still open ends the session."""
    tablet_id = patient_session.tablet_assessment_id()
    if tablet_id is None:
        return False
    return (
        view.state != answering.LinkState.ANSWERING
        or view.assessment is None
        or view.assessment.id != tablet_id
    )


def _end_tablet(view: answering.LinkView) -> ResponseReturnValue:
    submitted = view.state == answering.LinkState.DONE and (
        view.assessment is not None and view.assessment.id == patient_session.tablet_assessment_id()
    )
    return page_views.lock_tablet("submitted" if submitted else "closed")


def _answering_context() -> page_views.Answering | ResponseReturnValue:
    """The link, open assessment and its pages; otherwise the response to send instead."""
    now = utcnow()
    link = _session_link(now)
    if link is None:
        return page_views.session_needed()
    view = answering.link_view(link.patient, now)  # reads only: nothing to commit
    if _tablet_is_over(view):
        return _end_tablet(view)
    if view.state != answering.LinkState.ANSWERING or view.assessment is None:
        return redirect(url_for(".questionnaire"))
    return page_views.Answering(link, view.assessment, answering.pages_for(view.assessment))


@bp.context_processor
def _patient_template_helpers() -> dict[str, object]:
    def timepoint_label(code: str) -> str:
        return trial_schedule().timepoint(code).label(str(get_locale()))

    return {"timepoint_label": timepoint_label}
