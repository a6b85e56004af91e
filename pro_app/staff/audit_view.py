"""The audit trail: investigators see their site's events, admins every event; page and CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, abort, current_app, render_template, request, stream_with_context
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from sqlalchemy import ColumnElement, Select, String, and_, cast, false, or_
from wtforms import DateField, SelectField, StringField
from wtforms.validators import Length, Optional, ValidationError

from pro_app.extensions import db
from pro_app.i18n import _l
from pro_app.models import (
    ActorType,
    AuditEvent,
    Patient,
    PatientLink,
    Role,
    StaffUser,
)
from pro_app.security import LARGEST_ID
from pro_app.services.audit_trail import (
    ENTITY_PATIENT,
    build_rows,
    event_cells,
    neutralised,
    plain_text,
    redacted,
    scoped_events,
)
from pro_app.staff import bp
from pro_app.staff.access import patient_or_404, staff, staff_required

PER_PAGE = 50
CSV_CHUNK = 500


class AuditFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search form changes nothing

    study_code = StringField(_l("Patient study code"), validators=[Optional(), Length(max=40)])
    action = SelectField(_l("Action"), choices=[], validators=[Optional()])
    date_from = DateField(_l("From"), validators=[Optional()])
    date_to = DateField(_l("To"), validators=[Optional()])

    def validate_date_to(self, field: DateField) -> None:
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError(_l("The end date is before the start date."))


def patient_condition(patient: Patient) -> ColumnElement[bool]:
    """Events about this patient's records, or done through this patient's links."""
    links = db.select(cast(PatientLink.id, String)).where(PatientLink.patient_id == patient.id)
    conditions = [
        and_(
            AuditEvent.entity_type == entity_type,
            AuditEvent.entity_id.in_(
                db.select(cast(key, String)).select_from(tables).where(Patient.id == patient.id)
            ),
        )
        for entity_type, (key, tables) in ENTITY_PATIENT.items()
    ]
    conditions.append(
        and_(AuditEvent.actor_type == ActorType.PATIENT, AuditEvent.actor_id.in_(links))
    )
    return or_(*conditions)


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=ZoneInfo(current_app.config["TIMEZONE"]))


def filtered_events(user: StaffUser, form: AuditFilterForm) -> tuple[Select[Any], str | None]:
    """The user's events narrowed by the filters, newest first; and a notice if none can match."""
    query = scoped_events(user)
    notice = None
    patient_id = request.args.get("patient_id", type=int)
    if patient_id is not None and not 0 < patient_id <= LARGEST_ID:
        abort(404)  # no such patient, and too large for the database to be asked
    patient = patient_or_404(patient_id) if patient_id is not None else None
    if form.study_code.data and form.study_code.data.strip():
        code = form.study_code.data.strip().upper()
        found = db.session.scalar(db.select(Patient).where(Patient.study_code == code))
        if found is None or not (user.sees_all_sites or found.site_id == user.site_id):
            notice = _("No patient of your site has this study code.")
            query = query.where(false())
        elif patient is not None and patient.id != found.id:
            query = query.where(false())
        patient = found
    if patient is not None:
        query = query.where(patient_condition(patient))
    if form.action.data:
        query = query.where(AuditEvent.action == form.action.data)
    if form.date_from.data:
        query = query.where(AuditEvent.occurred_at >= _local_midnight(form.date_from.data))
    if form.date_to.data:
        end = _local_midnight(form.date_to.data + timedelta(days=1))
        query = query.where(AuditEvent.occurred_at < end)
    return query.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()), notice


def change_text(values: dict[str, Any] | None) -> str:
    """A change as compact text: "status: active; on: 2026-11-24"."""
    shown = redacted(values)
    if not shown:
        return ""
    return "; ".join(f"{key}: {plain_text(value)}" for key, value in shown.items())


def action_choices(user: StaffUser) -> list[tuple[str, str]]:
    actions = db.session.scalars(
        scoped_events(user)
        .with_only_columns(AuditEvent.action)
        .distinct()
        .order_by(AuditEvent.action)
    )
    return [("", _("All actions")), *((action, action) for action in actions)]


def _filter_form(user: StaffUser) -> AuditFilterForm:
    form = AuditFilterForm(formdata=request.args)
    form.action.choices = action_choices(user)
    return form


@bp.get("/audit")
@staff_required(Role.INVESTIGATOR, Role.ADMIN)
def audit_trail() -> ResponseReturnValue:
    """Newest first, filtered, a page at a time; times in the trial's time zone."""
    user = staff()
    form = _filter_form(user)
    if not form.validate():
        html = render_template("staff/audit.html", form=form, rows=[], pagination=None, notice=None)
        return html, 400
    query, notice = filtered_events(user, form)
    page = request.args.get("page", 1, type=int) or 1
    pagination = db.paginate(
        query, page=max(1, min(page, 100_000)), per_page=PER_PAGE, error_out=False
    )
    filters = {key: value for key, value in request.args.items() if key != "page" and value}
    return render_template(
        "staff/audit.html",
        form=form,
        rows=build_rows(list(pagination.items)),
        pagination=pagination,
        notice=notice,
        filters=filters,
        change_text=change_text,
    )


CSV_COLUMNS: tuple[str, ...] = ("occurred_at_utc", "occurred_at_local", "actor_type", "actor")
CSV_COLUMNS += ("action", "entity_type", "entity_id", "study_code", "before", "after", "reason")


def csv_lines(query: Select[Any]) -> Iterator[str]:
    """The header, then one line per event, a chunk of events at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    tz = ZoneInfo(current_app.config["TIMEZONE"])

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield flush()
    result = db.session.scalars(query.execution_options(yield_per=CSV_CHUNK))
    for chunk in result.partitions():
        for row in build_rows(chunk):
            event = row.event
            cells = (
                event.occurred_at.isoformat(),
                event.occurred_at.astimezone(tz).isoformat(),
                *event_cells(row),
            )
            writer.writerow([neutralised(cell) for cell in cells])
        yield flush()


@bp.get("/audit.csv")
@staff_required(Role.INVESTIGATOR, Role.ADMIN)
def audit_export() -> ResponseReturnValue:
    """The same events as the page (all pages), as UTF-8 CSV, streamed."""
    user = staff()
    form = _filter_form(user)
    if not form.validate():
        abort(400)
    query, _notice = filtered_events(user, form)
    stamp = datetime.now(ZoneInfo(current_app.config["TIMEZONE"])).strftime("%Y%m%d-%H%M")
    return Response(
        stream_with_context(csv_lines(query)),
        content_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="audit-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )
