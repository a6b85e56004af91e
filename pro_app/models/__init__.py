"""All tables; importing this package registers every model on the metadata."""

from pro_app.models.api_token import ApiToken
from pro_app.models.assessment import (
    Answer,
    Assessment,
    AssessmentStatus,
    Mode,
    Score,
)
from pro_app.models.audit import ActorType, AuditEvent
from pro_app.models.correction import AnswerCorrection
from pro_app.models.message import Message, MessageStatus
from pro_app.models.patient import Channel, Patient, PatientContact, PatientLink, PatientStatus
from pro_app.models.scheduler import SchedulerLease
from pro_app.models.site import Site
from pro_app.models.staff import Role, StaffSession, StaffUser

__all__ = [
    "ActorType",
    "Answer",
    "AnswerCorrection",
    "ApiToken",
    "Assessment",
    "AssessmentStatus",
    "AuditEvent",
    "Channel",
    "Message",
    "MessageStatus",
    "Mode",
    "Patient",
    "PatientContact",
    "PatientLink",
    "PatientStatus",
    "Role",
    "SchedulerLease",
    "Score",
    "Site",
    "StaffSession",
    "StaffUser",
]
