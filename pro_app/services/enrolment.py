"""Enrolling a patient: patient, contacts, planned assessments and personal link, at once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask_babel import LazyString

from pro_app.extensions import db
from pro_app.i18n import _l
from pro_app.models import Assessment, AssessmentStatus, Patient, PatientContact, Site
from pro_app.protocol.windows import plan_windows
from pro_app.services import audit
from pro_app.services.contact_formats import normalize_email, normalize_mobile
from pro_app.services.definitions import trial_schedule
from pro_app.services.links import issue_link
from pro_app.services.outbox import sync_patient_messages

STUDY_CODE = re.compile(r"^[A-Z0-9][A-Z0-9-]{2,39}$")
OLDEST_RANDOMIZATION_DAYS = 365


class EnrolmentError(ValueError):
    """Input that cannot enrol a patient; the message says why, in the user's language."""

    def __init__(self, message: str | LazyString, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class EnrolmentRequest:
    study_code: str
    site: Site
    arm: str
    randomized_on: date
    language: str = "it"
    timezone: str = "Europe/Rome"
    email: str | None = None
    mobile: str | None = None
    preferred_channel: str = "email"
    birth_year: int | None = None


@dataclass(frozen=True)
class Enrolment:
    patient: Patient
    token: str


def enroll_patient(
    request: EnrolmentRequest, now: datetime, actor: audit.Actor = audit.SYSTEM
) -> Enrolment:
    """Validate, create the patient with contacts, plan every assessment and issue the link."""
    study_code = request.study_code.strip().upper()
    _validate(request, study_code, now)
    patient = Patient(
        study_code=study_code,
        site=request.site,
        arm=request.arm,
        randomized_on=request.randomized_on,
        enrolled_at=now,
        enrolled_by_id=int(actor.id) if actor.type == "staff" and actor.id else None,
        language=request.language,
        timezone=request.timezone,
    )
    patient.contact = PatientContact(
        email=normalize_email(request.email),
        mobile=normalize_mobile(request.mobile),
        preferred_channel=request.preferred_channel,
        birth_year=request.birth_year,
    )
    db.session.add(patient)
    enrolled_on = now.astimezone(ZoneInfo(request.timezone)).date()
    for window in plan_windows(trial_schedule(), request.randomized_on, enrolled_on):
        db.session.add(
            Assessment(
                patient=patient,
                timepoint=window.timepoint,
                target_on=window.target_on,
                window_opens_on=window.opens_on,
                window_closes_on=window.closes_on,
                status=AssessmentStatus.SCHEDULED,
            )
        )
    audit.record(
        actor,
        "patient.enroll",
        patient,
        site_id=request.site.id,
        after={
            "study_code": study_code,
            "arm": request.arm,
            "randomized_on": request.randomized_on.isoformat(),
            "language": request.language,
        },
    )
    token = issue_link(patient, now, actor)
    db.session.flush()
    sync_patient_messages(patient, now)
    return Enrolment(patient=patient, token=token)


def _validate(request: EnrolmentRequest, study_code: str, now: datetime) -> None:
    schedule = trial_schedule()
    if not STUDY_CODE.match(study_code):
        raise EnrolmentError(
            _l("The study code must be 3-40 capital letters, digits or '-' (e.g. MI01-0001)."),
            "study_code",
        )
    if db.session.scalar(db.select(Patient.id).where(Patient.study_code == study_code)):
        raise EnrolmentError(
            _l("A patient with this study code is already enrolled."), "study_code"
        )
    if request.arm not in {arm.code for arm in schedule.arms}:
        raise EnrolmentError(_l("Choose one of the trial arms."), "arm")
    if request.language not in ("it", "en"):
        raise EnrolmentError(_l("Choose Italian or English."), "language")
    try:
        tz = ZoneInfo(request.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise EnrolmentError(_l("This time zone is not known."), "timezone") from None
    today = now.astimezone(tz).date()
    if request.randomized_on > today:
        raise EnrolmentError(_l("The randomization date cannot be in the future."), "randomized_on")
    if (today - request.randomized_on).days > OLDEST_RANDOMIZATION_DAYS:
        raise EnrolmentError(
            _l("The randomization date is more than a year ago: please check it."),
            "randomized_on",
        )
    if request.email and normalize_email(request.email) is None:
        raise EnrolmentError(_l("This is not a valid e-mail address."), "email")
    if request.mobile and normalize_mobile(request.mobile) is None:
        raise EnrolmentError(
            _l("This is not a valid Italian mobile number (e.g. 347 123 4567)."), "mobile"
        )
    if request.preferred_channel == "email" and not request.email and not request.mobile:
        raise EnrolmentError(_l("Give an e-mail address or a mobile number."), "email")
    if request.preferred_channel == "sms" and not request.mobile:
        raise EnrolmentError(_l("Text messages need a mobile number."), "mobile")
    if request.birth_year is not None and not 1900 <= request.birth_year <= today.year:
        raise EnrolmentError(_l("The year of birth is not plausible."), "birth_year")
