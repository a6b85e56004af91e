"""Staff sending a patient's link now, by e-mail or SMS (outside the reminder plan)."""

from __future__ import annotations

from datetime import datetime

from flask_babel import LazyString

from pro_app.extensions import db
from pro_app.i18n import _l
from pro_app.models import Message, Patient
from pro_app.services import audit
from pro_app.services.dispatch import deliver_now
from pro_app.services.outbox import message_channel


class LinkDeliveryError(ValueError):
    def __init__(self, message: str | LazyString) -> None:
        super().__init__(message)
        self.message = message


def send_link_now(
    patient: Patient, now: datetime, actor: audit.Actor, channel: str | None = None
) -> Message:
    """Queue a "link" message for the patient and try to deliver it at once; returns the row."""
    if not patient.is_active:
        raise LinkDeliveryError(_l("This patient is no longer followed: nothing is sent."))
    contact = patient.contact
    channel = channel or message_channel(patient)
    address = None
    if contact is not None:
        address = contact.email if channel == "email" else contact.mobile
    if channel not in ("email", "sms") or not address:
        raise LinkDeliveryError(_l("There is no contact for this channel."))
    message = Message(
        patient=patient,
        kind="link",
        channel=channel,
        # Each press is its own message: the key carries the instant.
        dedupe_key=f"{patient.id}:link:{channel}:{now.isoformat()}",
        scheduled_for=now,
        next_attempt_at=now,
        created_at=now,
    )
    db.session.add(message)
    audit.record(actor, "link.send", patient, site_id=patient.site_id, after={"channel": channel})
    db.session.commit()
    deliver_now(message, now)
    return message
