"""Giving the patient the link: the link page with its QR code, sending, re-issuing, the letter."""

from __future__ import annotations

from datetime import datetime

import segno
from flask import current_app, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import force_locale, format_date, format_datetime
from markupsafe import Markup

from pro_app.extensions import db
from pro_app.i18n import _l
from pro_app.models import Assessment, MessageStatus, Patient, PatientLink
from pro_app.models.assessment import ANSWERABLE_STATUSES
from pro_app.models.types import utcnow
from pro_app.services import audit
from pro_app.services.definitions import trial_schedule
from pro_app.services.link_delivery import LinkDeliveryError, send_link_now
from pro_app.services.links import active_link, issue_link, link_url, token_of
from pro_app.staff import bp
from pro_app.staff.access import CLINICAL_ROLES, patient_or_404, staff, staff_required
from pro_app.staff.enrolment_forms import ReissueLinkForm, SendLinkForm

# Time points still ahead of the patient: the letter lists only these.


@bp.get("/patients/<int:patient_id>/link")
@staff_required(*CLINICAL_ROLES)
def patient_link(patient_id: int) -> ResponseReturnValue:
    """The current link, its QR code and what staff can do with it. GET changes nothing."""
    return _link_page(patient_or_404(patient_id))


@bp.post("/patients/<int:patient_id>/send-link")
@staff_required(*CLINICAL_ROLES)
def send_link(patient_id: int) -> ResponseReturnValue:
    """Send the current link now by e-mail or SMS and say what happened."""
    patient = patient_or_404(patient_id)
    form = SendLinkForm()
    if not form.validate():
        return _link_page(patient, send_form=form, status=400)
    try:
        message = send_link_now(
            patient, utcnow(), audit.Actor.staff(staff().id), channel=form.channel.data
        )
    except LinkDeliveryError as error:
        db.session.rollback()
        flash(str(error.message), "error")
        return _link_page(patient, status=400)
    flash(
        *_delivery_outcome(
            message.status, message.channel, message.last_error, message.next_attempt_at
        )
    )
    return redirect(url_for("staff.patient_link", patient_id=patient.id))


@bp.post("/patients/<int:patient_id>/reissue-link")
@staff_required(*CLINICAL_ROLES)
def reissue_link(patient_id: int) -> ResponseReturnValue:
    """A new link; the old one stops working in the same transaction."""
    patient = patient_or_404(patient_id)
    form = ReissueLinkForm()
    if not form.validate():
        return _link_page(patient, reissue_form=form, status=400)
    if not patient.is_active:
        flash(_l("This patient is no longer followed: no new link is issued."), "error")
        return _link_page(patient, status=400)
    issue_link(patient, utcnow(), audit.Actor.staff(staff().id))
    db.session.commit()
    flash(_l("A new link was issued. The old link no longer works."), "success")
    return redirect(url_for("staff.patient_link", patient_id=patient.id))


@bp.get("/patients/<int:patient_id>/letter")
@staff_required(*CLINICAL_ROLES)
def letter(patient_id: int) -> ResponseReturnValue:
    """A printable A4 letter for home: greeting, instructions, link, QR and dates; no diagnosis."""
    patient = patient_or_404(patient_id)
    url = current_url(patient, utcnow())
    # The screen-only toolbar speaks the staff member's language; the letter the patient's.
    toolbar = {
        "back": str(_l("Back to the link page")),
        "hint": str(_l("Print this page on A4 paper (Ctrl+P) and give it to the patient.")),
        "no_link": str(_l("The current link cannot be shown again: issue a new link first.")),
    }
    with force_locale(patient.language):
        return render_template(
            "staff/letter.html",
            patient=patient,
            url=url,
            qr=qr_svg(url, str(_l("QR code of your personal link"))) if url else None,
            time_points=_letter_time_points(patient),
            printed_on=format_date(utcnow(), format="long"),
            asks_birth_year=bool(
                current_app.config["PATIENT_SECOND_FACTOR"]
                and patient.contact
                and patient.contact.birth_year
            ),
            toolbar=toolbar,
        )


def current_url(patient: Patient, now: datetime) -> str | None:
    """The address of the patient's active link, or None when it cannot be derived again."""
    link = active_link(patient)
    token = token_of(link) if link is not None and link.is_valid_at(now) else None
    return link_url(current_app.config["BASE_URL"] or "", token) if token else None


def qr_svg(url: str, label: str) -> Markup:
    """The URL as an inline SVG QR code that screen readers announce by its label."""
    svg = segno.make(url, error="m").svg_inline(
        scale=4, title=label, svgclass="qr-code", omitsize=True
    )
    # segno escapes the title; role="img" makes the title the image's accessible name.
    return Markup(svg.replace("<svg ", '<svg role="img" focusable="false" ', 1))  # noqa: S704


def _link_page(
    patient: Patient,
    send_form: SendLinkForm | None = None,
    reissue_form: ReissueLinkForm | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    now = utcnow()
    link: PatientLink | None = active_link(patient)
    url = current_url(patient, now)
    return render_template(
        "staff/patient_link.html",
        patient=patient,
        link=link,
        url=url,
        qr=qr_svg(url, str(_l("QR code of the personal link"))) if url else None,
        contact=patient.contact,
        send_form=send_form or SendLinkForm(formdata=None),
        reissue_form=reissue_form or ReissueLinkForm(formdata=None),
        patient_page=url_for("staff.patient", patient_id=patient.id)
        if "staff.patient" in current_app.view_functions
        else None,
    ), status


def _delivery_outcome(
    status: str, channel: str, last_error: str | None, next_attempt_at: datetime
) -> tuple[str, str]:
    """The flash message and its category for what happened to a link message."""
    if status == MessageStatus.SENT:
        if channel == "sms":
            return str(_l("The link was sent by text message.")), "success"
        return str(_l("The link was sent by e-mail.")), "success"
    if status == MessageStatus.PENDING and last_error is None:
        return str(
            _l(
                "It is quiet time for the patient: the message will go out at %(time)s.",
                time=format_datetime(next_attempt_at, format="short"),
            )
        ), "warning"
    if status in (MessageStatus.PENDING, MessageStatus.SENDING):
        return str(
            _l(
                "The message could not be sent yet (%(error)s); it is retried automatically.",
                error=last_error or "…",
            )
        ), "warning"
    return str(_l("The message was not sent: %(error)s", error=last_error or status)), "error"


def _letter_time_points(patient: Patient) -> list[dict[str, str]]:
    """Label and window dates of each questionnaire still to come, in the patient's language."""
    schedule = trial_schedule()
    assessments = db.session.scalars(
        db.select(Assessment)
        .where(Assessment.patient_id == patient.id, Assessment.status.in_(ANSWERABLE_STATUSES))
        .order_by(Assessment.window_opens_on)
    )
    return [
        {
            "label": schedule.timepoint(assessment.timepoint).label(patient.language),
            "opens": format_date(assessment.window_opens_on, format="full"),
            "closes": format_date(assessment.window_closes_on, format="full"),
        }
        for assessment in assessments
    ]
