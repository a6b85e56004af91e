"""Personal links: random tokens, of which only the SHA-256 is ever stored."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from zoneinfo import ZoneInfo

from pro_app.extensions import db
from pro_app.models import Patient, PatientLink
from pro_app.protocol.windows import participation_ends_at
from pro_app.services import audit
from pro_app.services.definitions import trial_schedule

TOKEN_BYTES = 32  # 256 bits, well above the 128 the threat model asks for


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
    token = secrets.token_urlsafe(TOKEN_BYTES)
    link = PatientLink(
        patient=patient,
        token_hash=hash_token(token),
        created_at=now,
        expires_at=participation_ends_at(
            trial_schedule(), patient.randomized_on, ZoneInfo(patient.timezone)
        ),
    )
    db.session.add(link)
    audit.record(actor, "link.issue", link, site_id=patient.site_id)
    return token


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
