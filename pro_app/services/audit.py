"""Writing the audit trail: one row per change, in the same transaction as the change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pro_app.extensions import db
from pro_app.models import ActorType, AuditEvent


@dataclass(frozen=True)
class Actor:
    """Who acts: a staff member, a patient through the link, or the system (scheduler, CLI)."""

    type: ActorType
    id: str | None = None

    @classmethod
    def staff(cls, staff_id: int) -> Actor:
        return cls(ActorType.STAFF, str(staff_id))

    @classmethod
    def patient_link(cls, link_id: int) -> Actor:
        return cls(ActorType.PATIENT, str(link_id))


SYSTEM = Actor(ActorType.SYSTEM, None)


def record(
    actor: Actor,
    action: str,
    entity: Any,
    *,
    site_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> AuditEvent:
    """Add an audit row for this change of this entity; the caller's commit makes it permanent."""
    db.session.flush()  # the entity needs its id before the trail can name it
    event = AuditEvent(
        actor_type=actor.type,
        actor_id=actor.id,
        action=action,
        entity_type=entity.__tablename__,
        entity_id=str(entity.id),
        site_id=site_id,
        before=before,
        after=after,
        reason=reason,
    )
    db.session.add(event)
    return event
