"""One patient: header, contacts (site staff only), schedule, messages, score charts, audit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, render_template
from flask.typing import ResponseReturnValue
from flask_babel import format_decimal
from flask_babel import gettext as _

from pro_app.extensions import db
from pro_app.i18n import _l
from pro_app.instruments.model import Instrument, ScaleKind
from pro_app.models import (
    ActorType,
    Assessment,
    AuditEvent,
    Message,
    MessageStatus,
    Patient,
    PatientLink,
    Score,
    StaffUser,
)
from pro_app.models.types import utcnow
from pro_app.services import worklist as work
from pro_app.services.answering import patient_assessments
from pro_app.services.definitions import instrument_registry, trial_schedule
from pro_app.staff import bp
from pro_app.staff.access import may_read_contacts, patient_or_404, staff, staff_required
from pro_app.staff.score_chart import ChartPoint, ReferenceLine, chart_svg, reference_value
from pro_app.staff.worklist import (
    CHANNEL_LABELS,
    STATE_LABELS,
    arm_label,
    error_text,
    locale_code,
    message_kind,
    message_status,
    timepoint_label,
)

# The key scales charted per instrument; an instrument not listed shows its first two scales.
CHART_SCALES = {
    "qlq_c30": ("QL2", "PF2", "FA", "SUMSC"),
    "qlq_gi_net21": ("ED", "GI"),
}
AUDIT_LIMIT = 300
# Never shown to staff who may not read contact details, even if a change recorded them.
CONTACT_KEYS = frozenset({"email", "mobile", "phone", "birth_year", "address"})
PATIENT_STATUS_LABELS = {
    "active": _l("active"),
    "withdrawn": _l("withdrawn"),
    "deceased": _l("deceased"),
    "completed": _l("completed"),
}
MODE_LABELS = {"web": _l("own device"), "tablet": _l("clinic tablet"), "paper": _l("paper")}


@dataclass(frozen=True)
class ScaleChart:
    code: str
    label: str
    svg: str
    values: list[float | None]


@dataclass(frozen=True)
class InstrumentCharts:
    code: str
    name: str
    is_provisional: bool
    charts: list[ScaleChart]


@dataclass(frozen=True)
class AuditLine:
    event: AuditEvent
    who: str
    changes: str


@bp.get("/patients/<int:patient_id>")
@staff_required()
def patient(patient_id: int) -> ResponseReturnValue:
    """Everything about one patient of the user's sites; 404 for any other patient."""
    user = staff()
    found = patient_or_404(patient_id)
    clinical = may_read_contacts(user)
    now = utcnow()
    assessments = patient_assessments(found)
    messages = list(
        db.session.scalars(
            db.select(Message)
            .where(Message.patient_id == found.id)
            .order_by(Message.scheduled_for, Message.id)
        )
    )
    return render_template(
        "staff/patient.html",
        patient=found,
        contact=found.contact if clinical else None,
        is_clinical=clinical,
        schedule_rows=_schedule_rows(found, assessments, messages, now),
        messages=messages,
        charts=_charts(assessments),
        timepoints=trial_schedule().timepoints,
        threshold=current_app.config["DETERIORATION_THRESHOLD"],
        audit_lines=_audit_lines(found, assessments, messages, clinical),
        audit_limit=AUDIT_LIMIT,
        has_audit_page="staff.audit_trail" in current_app.view_functions
        and user.has_role("investigator", "admin"),
        status_labels=PATIENT_STATUS_LABELS,
        state_labels=STATE_LABELS,
        mode_labels=MODE_LABELS,
        channel_labels=CHANNEL_LABELS,
        timepoint_label=timepoint_label,
        arm_label=arm_label,
        message_status=message_status,
        message_kind=message_kind,
        error_text=lambda text: error_text(text, user),
    )


def _schedule_rows(
    patient: Patient, assessments: list[Assessment], messages: list[Message], now: Any
) -> list[tuple[Assessment, work.WorkState, bool]]:
    """Each assessment with its state today, as the worklist decides it, and "due today"."""
    tz = ZoneInfo(patient.timezone)
    today = now.astimezone(tz).date()
    schedule = trial_schedule()
    sent: dict[int | None, set[str]] = {}
    for message in messages:
        if message.status == MessageStatus.SENT:
            sent.setdefault(message.assessment_id, set()).add(message.kind)
    rows = []
    for assessment in assessments:
        reminders = work.reminder_days(schedule, assessment.window, tz)
        state = work.classify(
            assessment.status, assessment.window, today, reminders, sent.get(assessment.id, ())
        )
        rows.append(
            (assessment, state, work.is_due_today(state, assessment.window, today, reminders))
        )
    return rows


def _charted_scales(instrument: Instrument) -> tuple[str, ...]:
    wanted = CHART_SCALES.get(instrument.code, instrument.scale_codes[:2])
    return tuple(code for code in wanted if code in instrument.scale_codes)


def _higher_is_worse(instrument: Instrument, scale: str) -> bool:
    if instrument.summary is not None and scale == instrument.summary.code:
        return False
    return instrument.scale(scale).kind == ScaleKind.SYMPTOM


def _charts(assessments: list[Assessment]) -> list[InstrumentCharts]:
    """One small chart per key scale, instrument by instrument, over the schedule's time points."""
    ids = [assessment.id for assessment in assessments]
    by_timepoint = {assessment.id: assessment.timepoint for assessment in assessments}
    values: dict[tuple[str, str, str], float | None] = {}
    if ids:
        for score in db.session.scalars(db.select(Score).where(Score.assessment_id.in_(ids))):
            values[(by_timepoint[score.assessment_id], score.instrument, score.scale)] = score.value
    registry = instrument_registry()
    locale = locale_code()
    threshold = float(current_app.config["DETERIORATION_THRESHOLD"])
    timepoints = trial_schedule().timepoints
    instrument_codes: list[str] = []
    for timepoint in timepoints:
        instrument_codes += [c for c in timepoint.instruments if c not in instrument_codes]
    result = []
    for code in instrument_codes:
        instrument = registry.get(code)
        scale_labels = registry.text(code, locale).scales
        charts = []
        for scale in _charted_scales(instrument):
            label = scale_labels.get(scale, scale)
            series = [values.get((tp.code, code, scale)) for tp in timepoints]
            points = [
                ChartPoint(
                    timepoint_label(tp.code),
                    value,
                    f"{timepoint_label(tp.code)}: {_number(value)}" if value is not None else "",
                )
                for tp, value in zip(timepoints, series, strict=True)
            ]
            reference = _reference(series[0], threshold, _higher_is_worse(instrument, scale))
            svg = chart_svg(
                points,
                title=_("%(scale)s over time", scale=label),
                chart_id=f"chart-{code}-{scale}",
                reference=reference,
            )
            charts.append(ScaleChart(scale, label, svg, series))
        result.append(InstrumentCharts(code, instrument.name, not instrument.verified, charts))
    return result


def _reference(baseline: float | None, threshold: float, worse_up: bool) -> ReferenceLine | None:
    value = reference_value(baseline, threshold, higher_is_worse=worse_up)
    if value is None:
        return None
    label = _(
        "Clinically relevant worsening: %(threshold)s points from baseline (%(value)s)",
        threshold=_number(threshold),
        value=_number(value),
    )
    return ReferenceLine(value, label)


def _number(value: float | None) -> str:
    return "—" if value is None else str(format_decimal(value, "0.#"))


def _audit_lines(
    patient: Patient, assessments: list[Assessment], messages: list[Message], clinical: bool
) -> list[AuditLine]:
    """This patient's trail (patient, assessments, links, messages), newest first."""
    link_ids = db.session.scalars(
        db.select(PatientLink.id).where(PatientLink.patient_id == patient.id)
    ).all()
    entities = {
        "patient": [str(patient.id)],
        "assessment": [str(a.id) for a in assessments],
        "patient_link": [str(i) for i in link_ids],
        "message": [str(m.id) for m in messages],
    }
    conditions = [
        (AuditEvent.entity_type == kind) & AuditEvent.entity_id.in_(ids)
        for kind, ids in entities.items()
        if ids
    ]
    events = db.session.scalars(
        db.select(AuditEvent)
        .where(db.or_(*conditions))
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
        .limit(AUDIT_LIMIT)
    ).all()
    staff_ids = {int(e.actor_id) for e in events if e.actor_type == ActorType.STAFF and e.actor_id}
    names: dict[int, str] = {}
    if staff_ids:
        rows = db.session.execute(
            db.select(StaffUser.id, StaffUser.name).where(StaffUser.id.in_(staff_ids))
        )
        names = {staff_id: name for staff_id, name in rows}
    return [AuditLine(e, _who(e, names), _changes(e, clinical)) for e in events]


def _who(event: AuditEvent, names: dict[int, str]) -> str:
    if event.actor_type == ActorType.STAFF and event.actor_id:
        return names.get(int(event.actor_id), _("staff member %(id)s", id=event.actor_id))
    if event.actor_type == ActorType.PATIENT:
        return _("patient link")
    return _("system")


def _changes(event: AuditEvent, clinical: bool, most: int = 6) -> str:
    """Before → after, compact; contact details only for those who may read them."""
    before, after = event.before or {}, event.after or {}
    keys = [k for k in dict.fromkeys([*before, *after]) if clinical or k not in CONTACT_KEYS]
    parts = []
    for key in keys[:most]:
        if key in before and key in after:
            parts.append(f"{key}: {_short(before[key])} → {_short(after[key])}")
        else:
            parts.append(f"{key}: {_short(after.get(key, before.get(key)))}")
    if len(keys) > most:
        parts.append(_("and %(count)d more", count=len(keys) - most))
    return "; ".join(parts)


def _short(value: Any) -> str:
    text = "—" if value is None else str(value)
    return text if len(text) <= 60 else text[:59] + "…"
