"""The patient's session (started by the personal link) and the signed key of each rendered page."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, g, session
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import joinedload

from pro_app.extensions import db
from pro_app.i18n import PATIENT_LANGUAGE_SESSION_KEY
from pro_app.models import Mode, PatientLink
from pro_app.services.links import hash_token

LINK_KEY = "patient_link"
SEEN_KEY = "patient_seen"
# Clinic tablet mode: the one assessment a staff member handed this device over for.
TABLET_KEY = "patient_tablet"
# After a tablet session: the device shows only "please return it", until staff sign in again.
LOCKED_KEY = "tablet_locked"
LOCKED_LANGUAGE_KEY = "tablet_locked_language"
FORM_KEY_SALT = "pro-app.patient-form"
# The "last seen" time is written back to the cookie at most this often: a patient's idle limit
# is counted in hours, and an unchanged session sends no Set-Cookie (issue 8: no session
# write per request).
SEEN_RESOLUTION_SECONDS = 60
TABLET_FORM_KEY = "tablet"


def find_valid_link(token: str, now: datetime) -> PatientLink | None:
    """The link this raw token opens now; None for unknown, revoked and expired alike."""
    if not token or len(token) > 200:
        return None
    link = db.session.scalar(
        db.select(PatientLink).where(PatientLink.token_hash == hash_token(token))
    )
    return link if link is not None and link.is_valid_at(now) else None


def start(link: PatientLink, now: datetime, *, tablet_assessment_id: int | None = None) -> None:
    """A fresh session for this link (nothing from an earlier session is kept)."""
    locale = session.get("locale")
    session.clear()
    # On a clinic tablet the staff member's language choice must not follow the patient.
    if locale and tablet_assessment_id is None:
        session["locale"] = locale
    session.permanent = True
    session[LINK_KEY] = link.id
    session[SEEN_KEY] = now.timestamp()
    session[PATIENT_LANGUAGE_SESSION_KEY] = link.patient.language
    if tablet_assessment_id is not None:
        session[TABLET_KEY] = tablet_assessment_id
    link.last_used_at = now


def end(reason: str = "left") -> None:
    """Forget the patient on this device; a clinic tablet then shows only the locked screen."""
    was_tablet = TABLET_KEY in session
    link_id = session.get(LINK_KEY)
    for key in (LINK_KEY, SEEN_KEY, TABLET_KEY, PATIENT_LANGUAGE_SESSION_KEY):
        session.pop(key, None)
    if was_tablet:
        session[LOCKED_KEY] = reason
        # The locked screen still speaks the patient's language (not the browser's).
        link = db.session.get(PatientLink, link_id) if isinstance(link_id, int) else None
        if link is not None:
            session[LOCKED_LANGUAGE_KEY] = link.patient.language


def tablet_assessment_id() -> int | None:
    """The assessment this device was handed over for, in clinic tablet mode."""
    value = session.get(TABLET_KEY)
    return value if isinstance(value, int) else None


def answer_mode() -> str:
    """How answers given in this session are recorded: on a clinic tablet or on the web."""
    return Mode.TABLET if tablet_assessment_id() is not None else Mode.WEB


def locked_reason() -> str | None:
    """Why a clinic tablet is locked (submitted, saved, left, closed), or None if it is not."""
    value = session.get(LOCKED_KEY)
    return value if isinstance(value, str) else None


def current_link(now: datetime) -> PatientLink | None:
    """The session's link if the session is fresh and the link valid; marks the session as used.

    "Used" is written back only when the last mark is a minute old, so most requests leave the
    cookie as it is.
    """
    link_id = session.get(LINK_KEY)
    seen = session.get(SEEN_KEY)
    if not isinstance(link_id, int) or not isinstance(seen, int | float):
        return None
    idle = timedelta(minutes=current_app.config["PATIENT_IDLE_MINUTES"])
    if now - datetime.fromtimestamp(seen, tz=now.tzinfo) > idle:
        return None
    # The patient comes in the same statement: every patient page needs the language.
    link = db.session.get(PatientLink, link_id, options=[joinedload(PatientLink.patient)])
    if link is None or not link.is_valid_at(now):
        return None
    if now.timestamp() - seen >= SEEN_RESOLUTION_SECONDS:
        session[SEEN_KEY] = now.timestamp()
    return link


@dataclass(frozen=True)
class FormKey:
    """What a rendered page vouches for: this link, this assessment, this page."""

    link_id: int
    assessment_id: int
    page: int
    nonce: str
    tablet: bool = False


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=FORM_KEY_SALT)


def make_form_key(link_id: int, assessment_id: int, page: int) -> str:
    """A signed key embedded in each rendered page (one per render); it records tablet mode."""
    parts: list[object] = [link_id, assessment_id, page, secrets.token_urlsafe(9)]
    if tablet_assessment_id() is not None:
        parts.append(TABLET_FORM_KEY)
    return _serializer().dumps(parts)


def read_form_key(value: str | None) -> FormKey | None:
    """The page's key if its signature is good and it is not too old, else None."""
    if not value or len(value) > 300:
        return None
    max_age = int(timedelta(days=current_app.config["PATIENT_FORM_KEY_DAYS"]).total_seconds())
    try:
        link_id, assessment_id, page, nonce, *mode = _serializer().loads(value, max_age=max_age)
    except (BadSignature, ValueError, TypeError):
        return None
    if not all(isinstance(part, int) for part in (link_id, assessment_id, page)):
        return None
    return FormKey(link_id, assessment_id, page, str(nonce), mode == [TABLET_FORM_KEY])


def may_restore(key: FormKey) -> bool:
    """Whether a page's key may restart an expired session on this device.

    A page shown in tablet mode restores only the same, still unfinished tablet session: once
    the device is locked, nothing rendered during the handover opens anything again.
    """
    tablet_id = tablet_assessment_id()
    if locked_reason() is not None:
        return False
    if tablet_id is None:
        return not key.tablet
    return key.tablet and key.assessment_id == tablet_id and session.get(LINK_KEY) == key.link_id


def remember_locked_context() -> None:
    """Let the locale selector use the language of the patient who just used the tablet."""
    language = session.get(LOCKED_LANGUAGE_KEY)
    if isinstance(language, str):
        g.patient_locale = language


def remember_patient_context(link: PatientLink) -> None:
    """Let the locale and time-zone selectors use the patient's settings for this request."""
    g.patient_locale = link.patient.language
    g.patient_timezone = link.patient.timezone
