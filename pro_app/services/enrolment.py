"""Enrolling a patient: patient, contacts, planned assessments and personal link, at once."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask_babel import LazyString, get_locale

from pro_app.extensions import db
from pro_app.i18n import _l
from pro_app.models import Assessment, AssessmentStatus, Patient, PatientContact, Site
from pro_app.protocol.eligibility import INCLUSION, Checklist, Criterion
from pro_app.protocol.windows import plan_windows
from pro_app.services import audit
from pro_app.services.contact_formats import normalize_email, normalize_mobile
from pro_app.services.definitions import eligibility_checklist, trial_schedule
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
    # Criterion code -> the answer (True = yes). None: not collected here (CLI, demo data).
    eligibility: Mapping[str, bool] | None = None
    # Who confirmed the checklist (defaults to the enrolling staff member); confirmed "now".
    eligibility_confirmed_by_id: int | None = None


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
    staff_id = int(actor.id) if actor.type == "staff" and actor.id else None
    patient = Patient(
        study_code=study_code,
        site=request.site,
        arm=request.arm,
        randomized_on=request.randomized_on,
        enrolled_at=now,
        enrolled_by_id=staff_id,
        language=request.language,
        timezone=request.timezone,
    )
    recorded = _eligibility_record(request, staff_id, now)
    if recorded:
        patient.eligibility = recorded["eligibility"]
        patient.eligibility_confirmed_by_id = recorded["confirmed_by"]
        patient.eligibility_confirmed_at = now
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
            **recorded,
        },
    )
    token = issue_link(patient, now, actor)
    db.session.flush()
    sync_patient_messages(patient, now)
    return Enrolment(patient=patient, token=token)


def ineligibility_message(criterion: Criterion, locale: str | None = None) -> LazyString:
    """Why this criterion's answer blocks enrolment, quoting the criterion."""
    text = criterion.text(locale or str(get_locale() or "it"))
    if criterion.kind == INCLUSION:
        return _l(
            "Not eligible: inclusion criterion %(number)s is not met. %(text)s",
            number=criterion.number,
            text=text,
        )
    return _l(
        "Not eligible: exclusion criterion %(number)s applies. %(text)s",
        number=criterion.number,
        text=text,
    )


def check_eligibility(checklist: Checklist, answers: Mapping[str, bool]) -> None:
    """EnrolmentError naming the first unanswered or failed criterion, if any."""
    unknown = sorted(set(answers) - {criterion.code for criterion in checklist.criteria})
    if unknown:
        raise EnrolmentError(
            _l("Unknown eligibility criterion: %(code)s.", code=", ".join(unknown)), "eligibility"
        )
    unanswered = checklist.unanswered(answers)
    if unanswered:
        raise EnrolmentError(
            _l("Answer every question of the eligibility checklist."),
            f"eligibility_{unanswered[0].code}",
        )
    failed = checklist.failed(answers)
    if failed:
        raise EnrolmentError(ineligibility_message(failed[0]), f"eligibility_{failed[0].code}")


def _eligibility_record(
    request: EnrolmentRequest, staff_id: int | None, now: datetime
) -> dict[str, Any]:
    """What the patient row and the audit trail keep of the confirmed checklist."""
    if request.eligibility is None:
        return {}
    return {
        "eligibility": {
            "checklist_version": eligibility_checklist().version,
            "answers": {code: bool(answer) for code, answer in request.eligibility.items()},
        },
        "confirmed_by": request.eligibility_confirmed_by_id or staff_id,
        "confirmed_at": now.isoformat(),
    }


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
    if request.eligibility is not None:
        check_eligibility(eligibility_checklist(), request.eligibility)
