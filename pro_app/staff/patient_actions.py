"""Status changes: withdraw, record a death, pause reminders, correct randomization, not done."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import LazyString, format_date, get_locale
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import Field

from pro_app.extensions import db
from pro_app.i18n import _l
from pro_app.models import Assessment, Patient
from pro_app.models.types import utcnow
from pro_app.services import audit, patient_status
from pro_app.services.definitions import trial_schedule
from pro_app.services.patient_status import StatusChangeError
from pro_app.services.randomization import correct_randomization_date
from pro_app.staff import bp
from pro_app.staff.access import CLINICAL_ROLES, patient_or_404, staff, staff_required
from pro_app.staff.action_forms import (
    DeathForm,
    NotDoneForm,
    RandomizationForm,
    RemindersForm,
    WithdrawForm,
)

# The same words as the patient page and the worklist use.
PATIENT_STATUS_LABELS = {
    "active": _l("active"),
    "withdrawn": _l("withdrawn"),
    "deceased": _l("deceased"),
    "completed": _l("completed"),
}
ASSESSMENT_STATUS_LABELS = {
    "scheduled": _l("scheduled"),
    "open": _l("open"),
    "in_progress": _l("in progress"),
    "completed": _l("completed"),
    "missed": _l("missed"),
    "not_done": _l("not done"),
}


@dataclass
class ActionPage:
    """What the generic action page shows around one form."""

    title: str
    submit_label: str
    fields: list[Field]
    intro: str | LazyString | None = None
    is_serious: bool = False  # cannot be undone: the button says so by its style
    assessment: Assessment | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@bp.route("/patients/<int:patient_id>/withdraw", methods=["GET", "POST"])
@staff_required(*CLINICAL_ROLES)
def withdraw(patient_id: int) -> ResponseReturnValue:
    """Withdraw the patient from the study: no more questionnaires or messages."""
    patient = patient_or_404(patient_id)
    form = WithdrawForm()
    page = ActionPage(
        title=_("Withdraw %(code)s from the study", code=patient.study_code),
        submit_label=_("Withdraw from the study"),
        fields=[form.on, form.reason],
        intro=_l("The questionnaires still to come will not be asked and no message will be sent."),
        is_serious=True,
    )
    return _handle(
        form,
        patient,
        page,
        check=lambda: patient_status.require_followed(patient),
        change=lambda: patient_status.withdraw(
            patient, _date_of(form.on), form.reason.data or "", utcnow(), _actor()
        ),
        done=lambda: _(
            "%(code)s has been withdrawn from the study; no further messages will be sent.",
            code=patient.study_code,
        ),
    )


@bp.route("/patients/<int:patient_id>/death", methods=["GET", "POST"])
@staff_required(*CLINICAL_ROLES)
def record_death(patient_id: int) -> ResponseReturnValue:
    """Record the patient's death: every pending message stops at once."""
    patient = patient_or_404(patient_id)
    form = DeathForm()
    page = ActionPage(
        title=_("Record the death of %(code)s", code=patient.study_code),
        submit_label=_("Record the death"),
        fields=[form.on],
        intro=_l("All pending messages are cancelled at once."),
        is_serious=True,
    )
    return _handle(
        form,
        patient,
        page,
        check=lambda: patient_status.require_followed(patient),
        change=lambda: patient_status.record_death(patient, _date_of(form.on), utcnow(), _actor()),
        done=lambda: _(
            "The death of %(code)s has been recorded; no further messages will be sent.",
            code=patient.study_code,
        ),
    )


@bp.route("/patients/<int:patient_id>/reminders", methods=["GET", "POST"])
@staff_required(*CLINICAL_ROLES)
def toggle_reminders(patient_id: int) -> ResponseReturnValue:
    """Pause the patient's reminders (cancel what is pending) or resume them."""
    patient = patient_or_404(patient_id)
    form = RemindersForm()
    if request.method == "GET":
        form.action.data = "resume" if patient.is_reminders_paused else "pause"
    pausing = (form.action.data or "pause") == "pause"
    if pausing:
        page = ActionPage(
            title=_("Pause the reminders of %(code)s", code=patient.study_code),
            submit_label=_("Pause the reminders"),
            fields=[form.reason],
            intro=_l(
                "No invitation or reminder is sent until you resume them. The patient can"
                " still answer with the personal link."
            ),
        )
    else:
        page = ActionPage(
            title=_("Resume the reminders of %(code)s", code=patient.study_code),
            submit_label=_("Resume the reminders"),
            fields=[],
            intro=_l("Invitations and reminders are planned again from now."),
        )
    return _handle(
        form,
        patient,
        page,
        check=lambda: patient_status.require_reminders_change(patient, pausing),
        change=lambda: patient_status.set_reminders_paused(
            patient, pausing, utcnow(), _actor(), form.reason.data if pausing else None
        ),
        done=lambda: (
            _("The reminders of %(code)s are paused.", code=patient.study_code)
            if pausing
            else _("The reminders of %(code)s have resumed.", code=patient.study_code)
        ),
    )


@bp.route("/patients/<int:patient_id>/randomization", methods=["GET", "POST"])
@staff_required(*CLINICAL_ROLES)
def correct_randomization(patient_id: int) -> ResponseReturnValue:
    """Correct the randomization date; only windows that have not opened yet move."""
    patient = patient_or_404(patient_id)
    form = RandomizationForm()
    page = ActionPage(
        title=_("Correct the randomization date of %(code)s", code=patient.study_code),
        submit_label=_("Correct the date"),
        fields=[form.new_date, form.reason],
        intro=_l(
            "Questionnaires whose window has not opened yet move with the new date; those"
            " already open, answered, missed or not done keep their dates."
        ),
    )
    moved: list[str] = []

    def change() -> None:
        correction = correct_randomization_date(
            patient, _date_of(form.new_date), form.reason.data or "", utcnow(), _actor()
        )
        moved.extend(_timepoint_label(code) for code in correction.moved)

    def done() -> str:
        message = _(
            "The randomization date of %(code)s is now %(date)s.",
            code=patient.study_code,
            date=format_date(patient.randomized_on, "medium"),
        )
        if moved:
            message += " " + _("Moved: %(timepoints)s.", timepoints=", ".join(moved))
        else:
            message += " " + _("No questionnaire had to move.")
        return message

    return _handle(
        form,
        patient,
        page,
        check=lambda: patient_status.require_followed(patient),
        change=change,
        done=done,
    )


@bp.route("/assessments/<int:assessment_id>/not-done", methods=["GET", "POST"])
@staff_required(*CLINICAL_ROLES)
def mark_not_done(assessment_id: int) -> ResponseReturnValue:
    """Declare that one questionnaire will not be collected, with the reason."""
    assessment = db.session.get(Assessment, assessment_id)
    if assessment is None:
        abort(404)
    patient = patient_or_404(assessment.patient_id)
    form = NotDoneForm()
    label = _timepoint_label(assessment.timepoint)
    page = ActionPage(
        title=_(
            "Mark “%(timepoint)s” of %(code)s as not done", timepoint=label, code=patient.study_code
        ),
        submit_label=_("Mark as not done"),
        fields=[form.reason],
        intro=_l("No further invitation or reminder is sent for this questionnaire."),
        assessment=assessment,
        extra={"timepoint_label": label},
    )
    return _handle(
        form,
        patient,
        page,
        check=lambda: patient_status.require_may_mark_not_done(assessment),
        change=lambda: patient_status.mark_not_done(
            assessment, form.reason.data or "", utcnow(), _actor()
        ),
        done=lambda: _(
            "“%(timepoint)s” of %(code)s is marked as not done.",
            timepoint=label,
            code=patient.study_code,
        ),
    )


def _handle(
    form: FlaskForm,
    patient: Patient,
    page: ActionPage,
    *,
    check: Callable[[], None],
    change: Callable[[], None],
    done: Callable[[], str],
) -> ResponseReturnValue:
    """GET shows the form; POST validates, changes, commits once and goes back to the patient."""
    refusal: str | LazyString | None = None
    status = 200
    if request.method == "POST":
        status = 400
        if form.validate_on_submit():
            try:
                change()
            except StatusChangeError as refused:
                db.session.rollback()  # nothing of a refused change is kept
                refusal = _place_error(form, refused)
            else:
                db.session.commit()
                flash(done(), "success")
                return redirect(url_for("staff.patient", patient_id=patient.id))
        elif _hidden_errors(form):
            refusal = _l("The form was not sent correctly. Please reload the page and try again.")
    is_possible = True
    try:
        check()
    except StatusChangeError as not_possible:
        refusal, is_possible = not_possible.message, False
    return render_template(
        "staff/patient_action.html",
        form=form,
        patient=patient,
        page=page,
        refusal=refusal,
        is_possible=is_possible,
        patient_status_label=PATIENT_STATUS_LABELS.get(patient.status, patient.status),
        assessment_status_label=(
            ASSESSMENT_STATUS_LABELS.get(page.assessment.status, page.assessment.status)
            if page.assessment is not None
            else None
        ),
    ), status


def _place_error(form: FlaskForm, refused: StatusChangeError) -> str | LazyString | None:
    """Show the service's message next to its field; a message without a field goes on top."""
    target = getattr(form, refused.field, None) if refused.field else None
    if isinstance(target, Field):
        target.errors = [*target.errors, refused.message]
        return None
    return refused.message


def _hidden_errors(form: FlaskForm) -> bool:
    # Errors of hidden fields have nowhere to show: they mean a tampered or stale form.
    return any(f.errors for f in form if f.type in ("HiddenField", "CSRFTokenField"))


def _date_of(field: Field) -> date:
    # InputRequired has run; this only keeps a missing date from reaching the service unseen.
    if not isinstance(field.data, date):
        raise StatusChangeError(_l("Enter the date."), field.name)
    return field.data


def _timepoint_label(code: str) -> str:
    try:
        return trial_schedule().timepoint(code).label(str(get_locale()))
    except KeyError:
        return code


def _actor() -> audit.Actor:
    return audit.Actor.staff(staff().id)
