"""Enrolling a patient from the staff workspace: details, eligibility checklist, then the link."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale

from pro_app.extensions import db
from pro_app.i18n import _l
from pro_app.models import Role, Site
from pro_app.models.types import utcnow
from pro_app.protocol.eligibility import EXCLUSION, INCLUSION
from pro_app.services import audit
from pro_app.services.definitions import eligibility_checklist, trial_schedule
from pro_app.services.enrolment import (
    OLDEST_RANDOMIZATION_DAYS,
    EnrolmentError,
    EnrolmentRequest,
    enroll_patient,
    ineligibility_message,
)
from pro_app.staff import bp
from pro_app.staff.access import staff, staff_required
from pro_app.staff.enrolment_forms import ELIGIBILITY_PREFIX, EnrolmentForm, build_enrolment_form


@bp.route("/enrol", methods=["GET", "POST"])
@staff_required(Role.NURSE, Role.INVESTIGATOR)
def enrol() -> ResponseReturnValue:
    """The enrolment form; on success one transaction enrols and the link page follows."""
    user = staff()
    site = db.session.get(Site, user.site_id) if user.site_id is not None else None
    if site is None:
        # Accounts tie nurses and investigators to a site: they enrol there, never elsewhere.
        abort(403)
    checklist = eligibility_checklist()
    locale = str(get_locale() or "it")
    form = build_enrolment_form(checklist, trial_schedule().arms, locale)
    is_valid = form.validate_on_submit()
    # Ineligible answers are named even when other fields need fixing: one round trip shows all.
    failed = checklist.failed(form.eligibility_answers()) if form.is_submitted() else []
    for criterion in failed:
        _add_error(form, ELIGIBILITY_PREFIX + criterion.code, ineligibility_message(criterion))
    if is_valid and not failed:
        try:
            enrolment = enroll_patient(
                _request_from(form, site, user.id), utcnow(), audit.Actor.staff(user.id)
            )
        except EnrolmentError as error:
            db.session.rollback()
            _add_error(form, error.field, error.args[0])
        else:
            db.session.commit()
            flash(
                _l(
                    "Patient %(code)s enrolled. Now give the patient the personal link.",
                    code=enrolment.patient.study_code,
                ),
                "success",
            )
            return redirect(url_for("staff.patient_link", patient_id=enrolment.patient.id))
    today = utcnow().astimezone(ZoneInfo(trial_schedule().timezone)).date()
    kinds = {ELIGIBILITY_PREFIX + each.code: each.kind for each in checklist.criteria}
    fields = form.eligibility_fields()
    status = 400 if request.method == "POST" else 200
    return render_template(
        "staff/enrol.html",
        form=form,
        inclusion=[field for field in fields if kinds[field.name] == INCLUSION],
        exclusion=[field for field in fields if kinds[field.name] == EXCLUSION],
        errors=_error_summary(form),
        today=today.isoformat(),
        oldest=(today - timedelta(days=OLDEST_RANDOMIZATION_DAYS)).isoformat(),
    ), status


def _request_from(form: EnrolmentForm, site: Site, staff_id: int) -> EnrolmentRequest:
    return EnrolmentRequest(
        study_code=form.study_code.data or "",
        site=site,
        arm=form.arm.data or "",
        randomized_on=form.randomized_on.data,  # type: ignore[arg-type]  # validated above
        language=form.language.data or "it",
        timezone=form.timezone.data or "Europe/Rome",
        email=form.email.data or None,
        mobile=form.mobile.data or None,
        preferred_channel=form.preferred_channel.data or "email",
        birth_year=form.birth_year_value(),
        eligibility=form.eligibility_answers(),
        eligibility_confirmed_by_id=staff_id,
    )


def _add_error(form: EnrolmentForm, field_name: str | None, message: object) -> None:
    """Show a refusal next to its field (or above the form when it belongs to none)."""
    field = form._fields.get(field_name or "")
    if field is None:
        form.form_errors.append(str(message))
        return
    field.errors = [*field.errors, str(message)]


def _error_summary(form: EnrolmentForm) -> list[tuple[str, str]]:
    """(anchor, message) for every error, in the order of the form, for the summary box."""
    summary = [("", message) for message in form.form_errors]
    for field in form:
        if field.name == "csrf_token":
            continue  # a missing token never reaches the view: CSRFProtect refuses the post
        anchor = f"{field.id}-0" if field.type == "RadioField" else field.id
        summary += [(anchor, str(message)) for message in field.errors]
    return summary
