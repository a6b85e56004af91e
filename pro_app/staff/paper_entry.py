"""Paper questionnaires typed in by site staff, and investigators' corrections of answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, RadioField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, ValidationError

from pro_app.errors import render_error
from pro_app.extensions import db
from pro_app.i18n import _l
from pro_app.instruments.model import TextPack
from pro_app.instruments.pages import Page, page_of, parse_field_name
from pro_app.models import Assessment, Role
from pro_app.models.types import utcnow
from pro_app.patient.pages import ItemView, item_views, text_pack
from pro_app.services import answering, corrections, paper_forms
from pro_app.services.definitions import trial_schedule
from pro_app.staff import bp
from pro_app.staff.access import patient_or_404, staff, staff_required

NO_ANSWER = "none"  # the correction form's choice for "no answer"


def no_markup(_form: FlaskForm, field: Any) -> None:
    """Free text is shown in pages and exports: refuse anything that looks like markup."""
    if field.data and ("<" in field.data or ">" in field.data):
        raise ValidationError(_l("Do not use the characters < and >."))


class PaperForm(FlaskForm):
    paper_completed_on = DateField(
        _l("Date written on the paper form"),
        validators=[InputRequired(_l("Enter the date written on the paper form."))],
    )


class CorrectionForm(FlaskForm):
    item = HiddenField(validators=[InputRequired()])
    new_value = RadioField(
        _l("New value"), validators=[InputRequired(_l("Choose the new value."))], choices=[]
    )
    reason = TextAreaField(
        _l("Reason for the correction"),
        validators=[
            DataRequired(_l("Give the reason for the correction.")),
            Length(max=corrections.REASON_MAX_LENGTH, message=_l("At most %(max)d characters.")),
            no_markup,
        ],
    )


@bp.app_template_global()
def has_endpoint(endpoint: str) -> bool:
    """Whether a page exists yet (fragments link to pages other modules provide)."""
    return endpoint in current_app.view_functions


@bp.app_template_global()
def paper_entry_possible(assessment: Assessment) -> bool:
    """Whether a paper form could be entered today (its earliest date is not still to come)."""
    return paper_forms.accepts_paper(assessment) and paper_forms.earliest_paper_date(
        assessment
    ) <= paper_forms.local_today(assessment, utcnow())


def patient_page_url(patient_id: int) -> str:
    """The staff page of the patient (the landing page if that page is not installed)."""
    if has_endpoint("staff.patient"):
        return url_for("staff.patient", patient_id=patient_id)
    return url_for("staff.home")


def assessment_or_404(assessment_id: int) -> Assessment:
    """An assessment of a patient of the user's site; 404 otherwise."""
    assessment = db.session.get(Assessment, assessment_id)
    if assessment is None:
        abort(404)
    patient_or_404(assessment.patient_id)
    return assessment


def timepoint_label(assessment: Assessment) -> str:
    return trial_schedule().timepoint(assessment.timepoint).label(str(get_locale()))


@dataclass(frozen=True)
class SectionView:
    """What the templates need per questionnaire section: its page, the wording, the items."""

    page: Page
    pack: TextPack
    questions: list[ItemView]


def sections(pages: tuple[Page, ...], values: Mapping[str, int | None]) -> list[SectionView]:
    return [
        SectionView(page, text_pack(page.instrument), item_views(page, values, set()))
        for page in pages
    ]


def parse_paper_answers(pages: tuple[Page, ...], posted: Mapping[str, str]) -> dict[str, int]:
    """The chosen answers of the whole form; AnswerError for a forged item or value."""
    names = {name for page in pages for name in page.field_names}
    chosen = {name: raw for name, raw in posted.items() if raw != ""}
    if any(parse_field_name(name) and name not in names for name in chosen):
        raise answering.AnswerError(
            _l("An answer was sent for a question that is not on this form.")
        )
    values: dict[str, int] = {}
    for page in pages:
        mine = {name: raw for name, raw in chosen.items() if name in page.field_names}
        values |= answering.parse_answers(page, mine)
    return values


@bp.route("/assessments/<int:assessment_id>/paper", methods=["GET", "POST"])
@staff_required(Role.NURSE, Role.INVESTIGATOR)
def paper_entry(assessment_id: int) -> ResponseReturnValue:
    """All items of the time point on one page, and the date written on the paper."""
    assessment = assessment_or_404(assessment_id)
    context: dict[str, Any] = {
        "assessment": assessment,
        "patient": assessment.patient,
        "timepoint": timepoint_label(assessment),
        "back_url": patient_page_url(assessment.patient_id),
    }
    if not paper_forms.accepts_paper(assessment):
        return render_template("staff/paper_entry.html", closed=True, **context), 409
    pages = paper_forms.paper_pages(assessment)
    form = PaperForm()
    values: dict[str, int] = {}
    error = None
    if form.is_submitted():
        try:
            values = parse_paper_answers(pages, request.form)
        except answering.AnswerError as refused:
            error = refused.message
        if form.validate() and error is None:
            completed_on = form.paper_completed_on.data
            try:
                paper_forms.record_paper_form(
                    assessment,
                    values,
                    completed_on=completed_on,
                    staff_user=staff(),
                    now=utcnow(),
                )
            except paper_forms.PaperFormError as refused:
                db.session.rollback()
                if refused.field:
                    form.paper_completed_on.errors = [refused.message]
                else:
                    error = refused.message
            else:
                db.session.commit()
                flash(_("The paper form has been recorded."), "success")
                if paper_forms.is_after_window(assessment, completed_on):
                    flash(
                        _(
                            "The date on the paper is after the window closed: "
                            "the questionnaire is recorded as completed late, on paper."
                        ),
                        "warning",
                    )
                return redirect(context["back_url"])
    html = render_template(
        "staff/paper_entry.html",
        closed=False,
        form=form,
        error=error,
        sections=sections(pages, values),
        earliest=paper_forms.earliest_paper_date(assessment),
        today=paper_forms.local_today(assessment, utcnow()),
        stored_count=len(assessment.answers),
        **context,
    )
    return html, 400 if form.is_submitted() else 200


@bp.route("/assessments/<int:assessment_id>/correct", methods=["GET", "POST"])
@staff_required(Role.INVESTIGATOR)
def correct_answer(assessment_id: int) -> ResponseReturnValue:
    """The answers with their history; one item at a time can be corrected, with a reason."""
    assessment = assessment_or_404(assessment_id)
    context: dict[str, Any] = {
        "assessment": assessment,
        "patient": assessment.patient,
        "timepoint": timepoint_label(assessment),
        "back_url": patient_page_url(assessment.patient_id),
    }
    if not corrections.is_correctable(assessment):
        return render_template("staff/correct_answer.html", closed=True, **context), 409
    pages = paper_forms.paper_pages(assessment)
    form = CorrectionForm()
    chosen = form.item.data if form.is_submitted() else request.args.get("item")
    parsed = parse_field_name(chosen or "")
    page = page_of(pages, *parsed) if parsed else None
    if chosen and page is None:
        return render_error(400, _l("This question is not part of the questionnaire."))
    current = answering.stored_values(assessment)
    item_view = None
    if page is not None and parsed is not None:
        item_view = item_views(page, current, set())[page.items.index(parsed[1])]
        form.item.data = item_view.name
        form.new_value.choices = [(NO_ANSWER, _("No answer"))] + [
            (str(option.value), option.label) for option in item_view.options
        ]
    if form.is_submitted():
        if parsed is None:
            return render_error(400, _l("Choose the question to correct."))
        if form.validate():
            raw = form.new_value.data
            try:
                corrections.correct_answer(
                    assessment,
                    parsed[0],
                    parsed[1],
                    None if raw == NO_ANSWER else int(raw or ""),
                    form.reason.data or "",
                    staff_user=staff(),
                    now=utcnow(),
                )
            except corrections.CorrectionError as refused:
                db.session.rollback()
                target = getattr(form, refused.field or "reason", form.reason)
                target.errors = [*target.errors, refused.message]
            else:
                db.session.commit()
                flash(_("The answer has been corrected and the scores recalculated."), "success")
                return redirect(url_for("staff.correct_answer", assessment_id=assessment.id))
    html = render_template(
        "staff/correct_answer.html",
        closed=False,
        form=form,
        item=item_view,
        sections=sections(pages, current),
        history=corrections.corrections_for([assessment.id]),
        current=current,
        no_answer=NO_ANSWER,
        **context,
    )
    return html, 400 if form.is_submitted() else 200
