"""Message wording, rendered in the patient's language: no diagnosis, no trial name, no names."""

from __future__ import annotations

from dataclasses import dataclass

from flask import render_template
from flask_babel import force_locale, format_date
from flask_babel import gettext as _

from pro_app.models import Assessment, AssessmentStatus, Message, Patient


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str


def render_message(message: Message, patient: Patient, url: str) -> RenderedMessage:
    """Subject and text of an outbox row for its channel, in the patient's language."""
    assessment: Assessment | None = message.assessment
    with force_locale(patient.language):
        closes_on = (
            format_date(assessment.window_closes_on, "long") if assessment is not None else None
        )
        context = {
            "kind": message.kind,
            "url": url,
            "closes_on": closes_on,
            "is_partial": assessment is not None
            and assessment.status == AssessmentStatus.IN_PROGRESS,
        }
        template = "messages/sms.txt" if message.channel == "sms" else "messages/email.txt"
        text = render_template(template, **context).strip() + "\n"
        subject = _subject(message.kind)
    return RenderedMessage(subject=subject, text=text)


def _subject(kind: str) -> str:
    if kind == "last_call":
        return _("Last days to fill in your questionnaire")
    if kind.startswith("reminder"):
        return _("Reminder: your questionnaire")
    return _("Your questionnaire")
