"""The append-only audit trail."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, String, event
from sqlalchemy.orm import Mapped, mapped_column

from pro_app.extensions import db
from pro_app.models.types import UTCDateTime, one_of, utcnow


class ActorType(enum.StrEnum):
    STAFF = "staff"
    PATIENT = "patient"
    SYSTEM = "system"


class AuditEvent(db.Model):  # type: ignore[name-defined]
    """Who did what to which record, when and why; rows are only ever inserted."""

    __tablename__ = "audit_event"
    __table_args__ = (
        CheckConstraint(one_of("actor_type", ActorType), name="actor_type_known"),
        Index("ix_audit_event_entity", "entity_type", "entity_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_type: Mapped[str] = mapped_column(String(10))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(60))
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    site_id: Mapped[int | None] = mapped_column(index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(String(1000))


# The trail must stay append-only even against a careless script or a manual SQL session, so the
# database itself refuses changes. The same statements serve create_all() and the migration.
APPEND_ONLY_TRIGGERS = {
    "sqlite": [
        "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event "
        "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END",
        "CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event "
        "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END",
    ],
    "postgresql": [
        "CREATE FUNCTION audit_event_refuse_change() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'audit_event is append-only'; END $$",
        "CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event "
        "FOR EACH ROW EXECUTE FUNCTION audit_event_refuse_change()",
    ],
}


def _install_triggers(target: Any, connection: Any, **_kw: Any) -> None:
    for statement in APPEND_ONLY_TRIGGERS.get(connection.dialect.name, []):
        connection.exec_driver_sql(statement)


event.listen(AuditEvent.__table__, "after_create", _install_triggers)
