"""The audit trail of the analyst's scope, as an export (contact keys hidden)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pro_app.exports.source import ExportFilter
from pro_app.exports.variables import Dataset, Variable, VarType, coded
from pro_app.extensions import db
from pro_app.i18n import _l
from pro_app.models import ActorType, AuditEvent, Site, StaffUser
from pro_app.services.audit_trail import build_rows, event_cells, scoped_events

CHUNK = 500


def audit_export(user: StaffUser | None, filters: ExportFilter) -> Dataset:
    """Every event the user may read (the command line reads all), oldest first."""
    variables = (
        Variable("occurred_at", _l("When (UTC)"), VarType.DATETIME),
        coded(
            "actor_type",
            _l("Who acted"),
            [
                (ActorType.STAFF, _l("staff member")),
                (ActorType.PATIENT, _l("patient, through the personal link")),
                (ActorType.SYSTEM, _l("the system (scheduler, commands)")),
            ],
        ),
        Variable("actor", _l("Staff member's name, or the patient's study code")),
        Variable("action", _l("What was done")),
        Variable("entity_type", _l("Kind of record changed")),
        Variable("entity_id", _l("Id of the record changed")),
        Variable(
            "study_code",
            _l("Patient concerned (study code)"),
            missing=_l("empty when the event concerns no patient"),
        ),
        Variable("before", _l("Values before (JSON; contact details hidden)")),
        Variable("after", _l("Values after (JSON; contact details hidden)")),
        Variable("reason", _l("Reason given")),
    )
    return Dataset("audit", variables, _rows(user, filters))


def _rows(user: StaffUser | None, filters: ExportFilter) -> Iterator[tuple[Any, ...]]:
    query = scoped_events(user) if user is not None else db.select(AuditEvent)
    if filters.site:
        site_ids = db.select(Site.id).where(Site.code == filters.site)
        query = query.where(AuditEvent.site_id.in_(site_ids))
    query = query.order_by(AuditEvent.occurred_at, AuditEvent.id)
    result = db.session.scalars(query.execution_options(yield_per=CHUNK))
    for chunk in result.partitions():
        for row in build_rows(chunk):
            yield (row.event.occurred_at, *event_cells(row))
