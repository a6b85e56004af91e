"""The worklist: who is due, open, overdue, missed or done, and which messages failed."""

from __future__ import annotations

import re
from typing import Any

from flask import current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import SearchField, SelectField
from wtforms.validators import AnyOf, Length

from pro_app.extensions import db
from pro_app.i18n import _l
from pro_app.models import Site, StaffUser
from pro_app.models.types import utcnow
from pro_app.services import worklist as work
from pro_app.services.definitions import trial_schedule
from pro_app.services.failed_messages import failed_messages
from pro_app.staff import bp
from pro_app.staff.access import may_read_contacts, staff, staff_required

SECTION_LABELS = {
    work.WorkFilter.DUE_TODAY: _l("Due today"),
    work.WorkFilter.OPEN: _l("Open"),
    work.WorkFilter.OVERDUE: _l("Overdue"),
    work.WorkFilter.MISSED: _l("Missed"),
    work.WorkFilter.COMPLETED: _l("Completed"),
    work.WorkFilter.NOT_DONE: _l("Not done"),
    work.WorkFilter.UPCOMING: _l("Not yet open"),
    work.WorkFilter.FAILED: _l("Messages that failed"),
    work.WorkFilter.ALL: _l("All"),
}
# One questionnaire's state (the sections above are their plural, capitalised lists).
STATE_LABELS = {
    work.WorkState.UPCOMING: _l("not yet open"),
    work.WorkState.OPEN: _l("open"),
    work.WorkState.OVERDUE: _l("overdue"),
    work.WorkState.MISSED: _l("missed"),
    work.WorkState.COMPLETED: _l("completed"),
    work.WorkState.NOT_DONE: _l("not done"),
}
MESSAGE_STATUS_LABELS = {
    "pending": _l("waiting"),
    "sending": _l("being sent"),
    "sent": _l("sent"),
    "failed": _l("failed"),
    "cancelled": _l("cancelled"),
    "retrying": _l("will be tried again"),
}
MESSAGE_KIND_LABELS = {
    "invitation": _l("invitation"),
    "last_call": _l("last call"),
    "link": _l("link"),
}
CHANNEL_LABELS = {"email": _l("e-mail"), "sms": _l("SMS")}
CHOOSE_LISTED = _l("Choose one of the listed options.")
# Delivery errors are written to hold no address, but a provider's text is not ours to trust.
EMAIL_LIKE = re.compile(r"[^\s@<>\"'()\[\]]+@[^\s@<>\"'()\[\]]+")
PHONE_LIKE = re.compile(r"\+?\d(?:[ .\-/]?\d){7,}")


class WorklistFilterForm(FlaskForm):
    """The worklist's filters; sent by GET, so it carries no CSRF token and changes nothing."""

    class Meta:
        csrf = False

    state = SelectField(_l("Show"), default=work.WorkFilter.OPEN.value, validate_choice=False)
    timepoint = SelectField(_l("Time point"), default="", validate_choice=False)
    site = SelectField(_l("Site"), default="", validate_choice=False)
    q = SearchField(
        _l("Study code"),
        validators=[
            Length(
                max=work.SEARCH_MAX_LENGTH,
                message=_l("Enter at most %(max)d characters."),
            )
        ],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )

    def set_choices(self, sites: list[Site]) -> None:
        """Fill the lists for this user and language, and accept only what they offer."""
        self.state.choices = [(f.value, SECTION_LABELS[f]) for f in work.WorkFilter]
        self.timepoint.choices = [("", _l("All time points"))] + [
            (tp.code, timepoint_label(tp.code)) for tp in trial_schedule().timepoints
        ]
        self.site.choices = [("", _l("All sites"))] + [(str(s.id), s.code) for s in sites]
        for select in (self.state, self.timepoint, self.site):
            values = [value for value, _label in select.choices]
            select.validators = [AnyOf(values, message=CHOOSE_LISTED)]


def locale_code() -> str:
    """The page's language as a plain code ("it", "en")."""
    return str(get_locale() or current_app.config["BABEL_DEFAULT_LOCALE"])


def timepoint_label(code: str) -> str:
    """A time point's label in the page's language (its code if the schedule no longer has it)."""
    try:
        return trial_schedule().timepoint(code).label(locale_code())
    except KeyError:
        return code


def arm_label(code: str) -> str:
    """An arm's label in the page's language (its code if the schedule no longer has it)."""
    try:
        return trial_schedule().arm(code).label(locale_code())
    except KeyError:
        return code


def message_status(message: Any) -> str:
    """A message's status in words; a pending row that already failed once is being retried."""
    status = str(message.status)
    if status == "pending" and message.last_error and message.attempts:
        status = "retrying"
    return str(MESSAGE_STATUS_LABELS.get(status, status))


def message_kind(kind: str) -> str:
    """A message kind in words ("reminder_2" → "reminder 2")."""
    if kind.startswith("reminder_"):
        return _("reminder %(number)s", number=kind.removeprefix("reminder_"))
    return str(MESSAGE_KIND_LABELS.get(kind, kind))


def error_text(text: str | None, user: StaffUser) -> str:
    """A delivery error as staff may see it: analysts never see anything like an address."""
    if not text:
        return ""
    if may_read_contacts(user):
        return text
    return PHONE_LIKE.sub("…", EMAIL_LIKE.sub("…", text))


def can_send_links(user: StaffUser) -> bool:
    """Whether resend buttons make sense: a clinical role, and the page to post to exists."""
    return may_read_contacts(user) and "staff.send_link" in current_app.view_functions


def _query_from(form: WorklistFilterForm, user: StaffUser) -> work.WorklistQuery:
    # A field that did not validate falls back to its default; the page says what was wrong.
    def valid(field: Any) -> str:
        return "" if field.errors else str(field.data or "")

    page = request.args.get("page", default=1, type=int) or 1
    site = valid(form.site) if user.sees_all_sites else ""
    return work.WorklistQuery(
        section=work.WorkFilter(valid(form.state) or work.WorkFilter.OPEN),
        timepoint=valid(form.timepoint) or None,
        site_id=int(site) if site else None,
        search=valid(form.q).strip(),
        page=max(1, min(page, 100_000)),
    )


@bp.get("/worklist")
@staff_required()
def worklist() -> ResponseReturnValue:
    """The nurses' landing page; analysts see it too, without contact details or actions."""
    user = staff()
    sites = (
        list(db.session.scalars(db.select(Site).order_by(Site.code)))
        if (user.sees_all_sites)
        else []
    )
    form = WorklistFilterForm(formdata=request.args)
    form.set_choices(sites)
    is_valid = form.validate()
    query = _query_from(form, user)
    now = utcnow()
    result = work.build_worklist(user, query, now)
    failed = failed_messages(user, query) if query.section == work.WorkFilter.FAILED else []
    total = result.failed_count if query.section == work.WorkFilter.FAILED else result.total
    pages = max(1, -(-total // work.PAGE_SIZE))
    return render_template(
        "staff/worklist.html",
        form=form,
        query=query,
        result=result,
        failed=failed,
        total=total,
        pages=pages,
        filters=work.WorkFilter,
        counted=work.COUNTED,
        section_labels=SECTION_LABELS,
        state_labels=STATE_LABELS,
        channel_labels=CHANNEL_LABELS,
        timepoints=trial_schedule().timepoints,
        timepoint_label=timepoint_label,
        arm_label=arm_label,
        message_status=message_status,
        message_kind=message_kind,
        may_send=can_send_links(user),
        error_text=lambda text: error_text(text, user),
        filter_args=_filter_args(query, user),
    ), (200 if is_valid else 400)


def _filter_args(query: work.WorklistQuery, user: StaffUser) -> dict[str, str]:
    """The current filters as URL arguments, for section tabs and page links."""
    args = {"timepoint": query.timepoint or "", "q": query.search}
    if user.sees_all_sites and query.site_id is not None:
        args["site"] = str(query.site_id)
    return {key: value for key, value in args.items() if value}
