"""The patient's session (started by the personal link) and the signed key of each rendered page."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, g, session
from itsdangerous import BadSignature, URLSafeTimedSerializer

from pro_app.extensions import db
from pro_app.models import PatientLink
from pro_app.services.links import hash_token

LINK_KEY = "patient_link"
SEEN_KEY = "patient_seen"
FORM_KEY_SALT = "pro-app.patient-form"


def find_valid_link(token: str, now: datetime) -> PatientLink | None:
    """The link this raw token opens now; None for unknown, revoked and expired alike."""
    if not token or len(token) > 200:
        return None
    link = db.session.scalar(
        db.select(PatientLink).where(PatientLink.token_hash == hash_token(token))
    )
    return link if link is not None and link.is_valid_at(now) else None


def start(link: PatientLink, now: datetime) -> None:
    """A fresh session for this link (nothing from an earlier session is kept)."""
    locale = session.get("locale")
    session.clear()
    if locale:
        session["locale"] = locale
    session.permanent = True
    session[LINK_KEY] = link.id
    session[SEEN_KEY] = now.timestamp()
    link.last_used_at = now


def end() -> None:
    """Forget the patient on this device."""
    session.pop(LINK_KEY, None)
    session.pop(SEEN_KEY, None)


def current_link(now: datetime) -> PatientLink | None:
    """The session's link if the session is fresh and the link valid; marks the session as used."""
    link_id = session.get(LINK_KEY)
    seen = session.get(SEEN_KEY)
    if not isinstance(link_id, int) or not isinstance(seen, int | float):
        return None
    idle = timedelta(minutes=current_app.config["PATIENT_IDLE_MINUTES"])
    if now - datetime.fromtimestamp(seen, tz=now.tzinfo) > idle:
        return None
    link = db.session.get(PatientLink, link_id)
    if link is None or not link.is_valid_at(now):
        return None
    session[SEEN_KEY] = now.timestamp()
    return link


@dataclass(frozen=True)
class FormKey:
    """What a rendered page vouches for: this link, this assessment, this page."""

    link_id: int
    assessment_id: int
    page: int
    nonce: str


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=FORM_KEY_SALT)


def make_form_key(link_id: int, assessment_id: int, page: int) -> str:
    """A signed key embedded in each rendered page (one per render)."""
    return _serializer().dumps([link_id, assessment_id, page, secrets.token_urlsafe(9)])


def read_form_key(value: str | None) -> FormKey | None:
    """The page's key if its signature is good and it is not too old, else None."""
    if not value or len(value) > 300:
        return None
    max_age = int(timedelta(days=current_app.config["PATIENT_FORM_KEY_DAYS"]).total_seconds())
    try:
        link_id, assessment_id, page, nonce = _serializer().loads(value, max_age=max_age)
    except (BadSignature, ValueError, TypeError):
        return None
    if not all(isinstance(part, int) for part in (link_id, assessment_id, page)):
        return None
    return FormKey(link_id, assessment_id, page, str(nonce))


def remember_patient_context(link: PatientLink) -> None:
    """Let the locale and time-zone selectors use the patient's settings for this request."""
    g.patient_locale = link.patient.language
    g.patient_timezone = link.patient.timezone
