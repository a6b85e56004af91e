"""Reading the audit trail: the user's scope, who did it, which patient, contact keys hidden.

Shared by the audit page, its CSV and the analysts' audit export.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import Select
from sqlalchemy.orm import join

from pro_app.extensions import db
from pro_app.models import (
    ActorType,
    AnswerCorrection,
    Assessment,
    AuditEvent,
    Message,
    Patient,
    PatientLink,
    StaffUser,
)

# Contact details never belong in the trail; should a caller ever put them there, they are
# still not shown (the keys are matched loosely on purpose).
CONTACT_KEYS = ("email", "e_mail", "mobile", "phone", "birth_year", "address")
# Spreadsheets run cells that start with these as formulas.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# entity type → (its id column, its table joined to the patient it concerns)
ENTITY_PATIENT: dict[str, tuple[Any, Any]] = {
    "patient": (Patient.id, Patient),
    "patient_contact": (Patient.id, Patient),
    "assessment": (Assessment.id, join(Assessment, Patient)),
    "patient_link": (PatientLink.id, join(PatientLink, Patient)),
    "message": (Message.id, join(Message, Patient)),
    "answer_correction": (AnswerCorrection.id, join(AnswerCorrection, Assessment).join(Patient)),
}


@dataclass(frozen=True)
class Row:
    """One event as the page and the CSV show it."""

    event: AuditEvent
    who: str
    study_code: str | None

    @property
    def entity(self) -> str:
        return f"{self.event.entity_type} {self.event.entity_id or ''}".strip()


def scoped_events(user: StaffUser) -> Select[Any]:
    """Every event this user may read: the own site's, or all for staff without a site."""
    query = db.select(AuditEvent)
    return query if user.sees_all_sites else query.where(AuditEvent.site_id == user.site_id)


def build_rows(events: Sequence[AuditEvent]) -> list[Row]:
    """Who did it and which patient it concerns, looked up once for the whole batch."""
    staff_ids = {_int(e.actor_id) for e in events if e.actor_type == ActorType.STAFF}
    names: dict[int, str] = {
        staff_id: name
        for staff_id, name in db.session.execute(
            db.select(StaffUser.id, StaffUser.name).where(StaffUser.id.in_(staff_ids))
        )
    }
    link_ids = {_int(e.actor_id) for e in events if e.actor_type == ActorType.PATIENT}
    link_codes = _study_codes("patient_link", link_ids)
    codes = {
        kind: _study_codes(kind, {_int(e.entity_id) for e in events if e.entity_type == kind})
        for kind in ENTITY_PATIENT
    }
    rows = []
    for event in events:
        actor = _int(event.actor_id)
        if event.actor_type == ActorType.STAFF:
            who = names.get(actor) or _("staff member %(id)s", id=event.actor_id)
        elif event.actor_type == ActorType.PATIENT:
            code = link_codes.get(actor)
            who = _("patient link") + (f" ({code})" if code else "")
        else:
            who = _("system")
        study_code = codes.get(event.entity_type, {}).get(_int(event.entity_id))
        rows.append(Row(event, who, study_code))
    return rows


def _int(value: str | None) -> int:
    """An id stored as text; 0 (no row has it) for anything else."""
    return int(value) if value and value.isdigit() else 0


def _study_codes(entity_type: str, ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted(set(ids) - {0})
    if not wanted:
        return {}
    key, tables = ENTITY_PATIENT[entity_type]
    statement = db.select(key, Patient.study_code).select_from(tables).where(key.in_(wanted))
    return {row_id: code for row_id, code in db.session.execute(statement)}


def redacted(values: dict[str, Any] | None) -> dict[str, Any] | None:
    """The change without anything that looks like a contact detail."""
    if values is None:
        return None
    return {
        key: "[hidden]" if any(word in key.lower() for word in CONTACT_KEYS) else value
        for key, value in values.items()
    }


def plain_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else str(value)


def neutralised(cell: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    text = "" if cell is None else str(cell)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def audit_json(values: dict[str, Any] | None) -> str:
    shown = redacted(values)
    return json.dumps(shown, ensure_ascii=False, sort_keys=True) if shown is not None else ""


def event_cells(row: Row) -> tuple[Any, ...]:
    """actor_type, actor, action, entity_type, entity_id, study_code, before, after, reason."""
    event = row.event
    return (
        event.actor_type,
        row.who,
        event.action,
        event.entity_type,
        event.entity_id,
        row.study_code,
        audit_json(event.before),
        audit_json(event.after),
        event.reason,
    )
