"""Reading an export request (kind, format, filters) from query arguments, for the analyst
pages and the API alike; and recording who exported what in the audit trail."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import date

from flask_babel import LazyString

from pro_app.exports.registry import KINDS
from pro_app.exports.source import ExportFilter
from pro_app.exports.writers import FORMATS
from pro_app.extensions import db
from pro_app.i18n import _l
from pro_app.models import Site, StaffUser
from pro_app.services import audit
from pro_app.services.definitions import instrument_registry, trial_schedule


class ExportRequestError(ValueError):
    """A request that names something unknown; `message` is for the user, `field` the argument."""

    def __init__(self, message: LazyString, field: str) -> None:
        super().__init__(str(message))
        self.message = message
        self.field = field


def parse_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ExportRequestError(_l("There is no export of this kind."), "kind")
    return kind


def parse_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ExportRequestError(
            _l("Choose one of the formats: CSV, Excel, SPSS or Stata."), "format"
        )
    return fmt


def _date(args: Mapping[str, str], name: str) -> date | None:
    text = (args.get(name) or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ExportRequestError(_l("Enter dates as YYYY-MM-DD."), name) from None


def _code(args: Mapping[str, str], name: str, known: set[str], message: LazyString) -> str | None:
    value = (args.get(name) or "").strip()
    if not value:
        return None
    if value not in known:
        raise ExportRequestError(message, name)
    return value


def parse_filters(args: Mapping[str, str], user: StaffUser | None) -> ExportFilter:
    """Filters from query arguments; unknown codes and bad dates raise ExportRequestError."""
    schedule = trial_schedule()
    sites = {code for (code,) in db.session.execute(db.select(Site.code))}
    if user is not None and not user.sees_all_sites and user.site is not None:
        sites = {user.site.code}  # another site's code is as unknown as a made-up one
    filters = ExportFilter(
        site=_code(args, "site", sites, _l("There is no such site among yours.")),
        arm=_code(args, "arm", {arm.code for arm in schedule.arms}, _l("There is no such arm.")),
        timepoint=_code(
            args,
            "timepoint",
            {tp.code for tp in schedule.timepoints},
            _l("There is no such time point."),
        ),
        instrument=_code(
            args,
            "instrument",
            set(instrument_registry().instruments),
            _l("There is no such questionnaire."),
        ),
        randomized_from=_date(args, "randomized_from"),
        randomized_to=_date(args, "randomized_to"),
    )
    if (
        filters.randomized_from
        and filters.randomized_to
        and filters.randomized_to < filters.randomized_from
    ):
        raise ExportRequestError(_l("The end date is before the start date."), "randomized_to")
    return filters


def parse_as_of(args: Mapping[str, str], today: date) -> date:
    return _date(args, "as_of") or today


def record_export(user: StaffUser, kind: str, fmt: str, filters: ExportFilter, via: str) -> None:
    """An audit row for a download (via = "page" or "api"); the caller commits."""
    audit.record(
        audit.Actor.staff(user.id),
        "export.download",
        user,
        site_id=user.site_id,
        after={
            "kind": kind,
            "format": fmt,
            "via": via,
            "filters": {key: _plain(value) for key, value in asdict(filters).items() if value},
        },
    )


def _plain(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value
