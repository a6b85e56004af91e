"""Clinic tablet mode: hand this device to the patient (the staff session ends here)."""

from __future__ import annotations

from flask import abort, flash, g, redirect, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, logout_user

from pro_app.extensions import db
from pro_app.models import Assessment
from pro_app.models.types import utcnow
from pro_app.patient import session as patient_session
from pro_app.services import staff_sessions
from pro_app.services import tablet as tablet_service
from pro_app.staff import bp
from pro_app.staff.access import patient_or_404, staff, staff_required


@bp.post("/assessments/<int:assessment_id>/tablet")
@staff_required(*tablet_service.TABLET_ROLES)
def tablet_start(assessment_id: int) -> ResponseReturnValue:
    """Sign the staff member out on this device and open the questionnaire for the patient."""
    assessment = db.session.get(Assessment, assessment_id)
    if assessment is None:
        abort(404)
    patient_or_404(assessment.patient_id)  # another site's assessments do not exist here
    now = utcnow()
    try:
        link = tablet_service.start_tablet(assessment, staff(), now)
    except tablet_service.TabletRefused as refused:
        db.session.rollback()
        flash(str(refused.message), "error")
        return redirect(url_for("staff.patient", patient_id=assessment.patient_id))
    # Revoked like a sign-out: the patient holding the device can reach no staff page.
    token = g.get("staff_session_token")
    if token:
        staff_sessions.revoke(token, now)
    logout_user()
    patient_session.start(link, now, tablet_assessment_id=assessment.id)
    db.session.commit()
    return redirect(url_for("patient.questionnaire"))


@bp.app_context_processor
def _tablet_helpers() -> dict[str, object]:
    def tablet_available(assessment: Assessment) -> bool:
        if not current_user.is_authenticated:
            return False
        return tablet_service.may_start(assessment, staff(), utcnow())

    return {"tablet_available": tablet_available}
