"""Forms of the patient status changes: withdrawal, death, reminders, randomization, not done."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, InputRequired, Length, Optional

from pro_app.i18n import _l
from pro_app.services.patient_status import MAX_REASON_LENGTH

DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y")  # the date picker's value, or a date typed by hand
TOO_LONG = _l("At most %(max)s characters (now %(length)s).")


class LocalDateField(DateField):
    """A date picker; an empty value is left to DataRequired, a wrong one gets our message."""

    def __init__(self, label: Any = None, validators: Any = None, **kwargs: Any) -> None:
        super().__init__(label, validators, format=list(DATE_FORMATS), **kwargs)

    def process_formdata(self, valuelist: list[Any]) -> None:
        text = " ".join(str(value) for value in valuelist).strip()
        self.data = None
        if not text:
            return
        for date_format in DATE_FORMATS:
            try:
                self.data = datetime.strptime(text, date_format).date()
                return
            except ValueError:
                continue
        raise ValueError(str(_l("Enter a valid date (for example 31/01/2025).")))


def _reason(label: Any, *, required: bool, description: Any = "") -> TextAreaField:
    presence = DataRequired(_l("Give the reason.")) if required else Optional()
    return TextAreaField(
        label,
        validators=[presence, Length(max=MAX_REASON_LENGTH, message=TOO_LONG)],
        description=description,
        render_kw={"rows": 3},
    )


class WithdrawForm(FlaskForm):
    on = LocalDateField(
        _l("Date of withdrawal"),
        validators=[InputRequired(_l("Enter the date."))],
        description=_l("Not in the future, not before randomization."),
    )
    reason = _reason(_l("Reason for the withdrawal"), required=True)


class DeathForm(FlaskForm):
    on = LocalDateField(
        _l("Date of death"),
        validators=[InputRequired(_l("Enter the date."))],
        description=_l("Not in the future, not before randomization."),
    )


class RemindersForm(FlaskForm):
    # The wanted state, not a toggle: pressing the button twice does not undo the first press.
    action = HiddenField(validators=[AnyOf(("pause", "resume"))])
    reason = _reason(
        _l("Reason (optional)"),
        required=False,
        description=_l("For example: in hospital until the end of the month."),
    )


class RandomizationForm(FlaskForm):
    new_date = LocalDateField(
        _l("Correct randomization date"),
        validators=[InputRequired(_l("Enter the date."))],
        description=_l("Not in the future, at most one year before enrolment."),
    )
    reason = _reason(_l("Reason for the correction"), required=True)


class NotDoneForm(FlaskForm):
    reason = _reason(
        _l("Why the questionnaire was not done"),
        required=True,
        description=_l("For example: the patient was too unwell to answer."),
    )
