"""The analyst pages' filter form (a GET form) and the filters it stands for."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField

from pro_app.exports.requests import ExportRequestError, parse_filters
from pro_app.exports.source import ExportFilter
from pro_app.extensions import db
from pro_app.i18n import _l
from pro_app.models import Site, StaffUser
from pro_app.services.definitions import instrument_registry, trial_schedule

# The query arguments that are filters (the same names parse_filters reads).
FILTER_NAMES = ("site", "arm", "timepoint", "instrument", "randomized_from", "randomized_to")


class AnalystFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET form that changes nothing

    site = SelectField(_l("Site"), choices=[], validate_choice=False)
    arm = SelectField(_l("Arm"), choices=[], validate_choice=False)
    timepoint = SelectField(_l("Time point"), choices=[], validate_choice=False)
    instrument = SelectField(_l("Questionnaire"), choices=[], validate_choice=False)
    randomized_from = DateField(_l("Randomized from"))
    randomized_to = DateField(_l("Randomized to"))

    def show_error(self, error: ExportRequestError) -> None:
        """Put parse_filters' message next to the field it is about."""
        field = self._fields.get(error.field)
        if field is not None:
            field.errors = [str(error.message)]


def filter_form(user: StaffUser) -> AnalystFilterForm:
    """The form filled from the query string; choices from the schedule and the user's sites."""
    form = AnalystFilterForm(formdata=request.args)
    locale = str(get_locale() or "it")
    schedule = trial_schedule()
    if user.sees_all_sites:
        sites = db.session.scalars(db.select(Site).order_by(Site.code))
        form.site.choices = [("", _("All sites")), *((s.code, _site_name(s)) for s in sites)]
    elif user.site is not None:
        form.site.choices = [("", _site_name(user.site))]  # one's own site is all there is
    form.arm.choices = [("", _("All arms")), *((a.code, a.label(locale)) for a in schedule.arms)]
    form.timepoint.choices = [
        ("", _("All time points")),
        *((tp.code, tp.label(locale)) for tp in schedule.timepoints),
    ]
    form.instrument.choices = [
        ("", _("All questionnaires")),
        *((code, i.name) for code, i in instrument_registry().instruments.items()),
    ]
    return form


def _site_name(site: Site) -> str:
    return f"{site.code} – {site.name}"


def read_filters(user: StaffUser) -> tuple[AnalystFilterForm, ExportFilter | None]:
    """The form and the parsed filters; None (and the message on the form) when they are bad."""
    form = filter_form(user)
    try:
        return form, parse_filters(request.args, user)
    except ExportRequestError as error:
        form.show_error(error)
        return form, None


def filter_args() -> dict[str, Any]:
    """The filters of this request, for links that must carry them (downloads, plots)."""
    return {name: request.args[name] for name in FILTER_NAMES if request.args.get(name)}


def local_now() -> datetime:
    """Now on the trial's wall clock (file names, 'as of' dates)."""
    return datetime.now(ZoneInfo(current_app.config["TIMEZONE"]))
