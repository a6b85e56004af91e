"""Clinic tablet mode: a staff member hands the device to a patient for one assessment."""

from __future__ import annotations

from datetime import datetime

from flask_babel import LazyString

from pro_app.i18n import _l
from pro_app.models import Assessment, PatientLink, Role, StaffUser
from pro_app.services import answering, audit, links

# Handing over a device is clinic work: the site's nurses and investigators.
TABLET_ROLES = (Role.NURSE, Role.INVESTIGATOR)


class TabletRefused(Exception):
    """The device cannot be handed over for this assessment; the message says why."""

    def __init__(self, message: str | LazyString) -> None:
        super().__init__(message)
        self.message = message


def tablet_link(assessment: Assessment, user: StaffUser, now: datetime) -> PatientLink:
    """The patient's link to answer this assessment on a clinic device; TabletRefused if not now."""
    patient = assessment.patient
    if not user.has_role(*TABLET_ROLES) or not (
        user.sees_all_sites or user.site_id == patient.site_id
    ):
        raise TabletRefused(_l("You cannot hand over a device for this patient."))
    if not patient.is_active:
        raise TabletRefused(_l("This patient no longer answers questionnaires."))
    if not answering.is_answerable(assessment, now):
        raise TabletRefused(_l("This questionnaire cannot be answered now."))
    link = links.active_link(patient)
    if link is None or not link.is_valid_at(now):
        raise TabletRefused(_l("The patient has no valid personal link: issue a new link first."))
    return link


def may_start(assessment: Assessment, user: StaffUser, now: datetime) -> bool:
    """Whether the "hand this device to the patient" button applies now."""
    try:
        tablet_link(assessment, user, now)
    except TabletRefused:
        return False
    return True


def start_tablet(assessment: Assessment, user: StaffUser, now: datetime) -> PatientLink:
    """Check and record the handover; the caller ends the staff session and starts the patient's."""
    link = tablet_link(assessment, user, now)
    audit.record(
        audit.Actor.staff(user.id),
        "tablet.start",
        assessment,
        site_id=assessment.patient.site_id,
        after={"timepoint": assessment.timepoint, "link": link.id},
    )
    return link
