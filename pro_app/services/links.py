"""Personal links: random tokens, of which only the SHA-256 is ever stored."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app

from pro_app.extensions import db
from pro_app.models import Patient, PatientLink
from pro_app.protocol.windows import participation_ends_at
from pro_app.services import audit
from pro_app.services.definitions import trial_schedule

SALT_BYTES = 16  # 128 random bits per link; the token is an HMAC-SHA256 (256 bits) of it


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_link(patient: Patient, now: datetime, actor: audit.Actor = audit.SYSTEM) -> str:
    """Revoke the patient's active link, if any, and return the raw token of a new one."""
    active = active_link(patient)
    if active is not None:
        active.revoked_at = now
        audit.record(actor, "link.revoke", active, site_id=patient.site_id)
        db.session.flush()  # the one-active-link index must see the revocation first
    salt = secrets.token_hex(SALT_BYTES)
    token = derive_token(salt)
    link = PatientLink(
        patient=patient,
        salt=salt,
        token_hash=hash_token(token),
        created_at=now,
        expires_at=participation_ends_at(
            trial_schedule(), patient.randomized_on, ZoneInfo(patient.timezone)
        ),
    )
    db.session.add(link)
    audit.record(actor, "link.issue", link, site_id=patient.site_id)
    return token


def derive_token(salt: str) -> str:
    """The link token for a salt: needs the server's LINK_SECRET, which the database never holds."""
    secret = str(current_app.config["LINK_SECRET"] or current_app.config["SECRET_KEY"])
    digest = hmac.new(secret.encode(), f"patient-link:{salt}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def token_of(link: PatientLink) -> str | None:
    """The raw token of a link, when it can be derived again (to repeat it in a reminder)."""
    if link.salt is None:
        return None
    token = derive_token(link.salt)
    # A changed LINK_SECRET would derive another token: never send a link that does not open.
    return token if hmac.compare_digest(hash_token(token), link.token_hash) else None


def active_link(patient: Patient) -> PatientLink | None:
    """The patient's link that is not revoked, if any."""
    return db.session.scalar(
        db.select(PatientLink).where(
            PatientLink.patient_id == patient.id, PatientLink.revoked_at.is_(None)
        )
    )


def link_url(base_url: str, token: str) -> str:
    """The address the patient opens; built only from the configured base URL."""
    return f"{base_url.rstrip('/')}/p/{token}"
