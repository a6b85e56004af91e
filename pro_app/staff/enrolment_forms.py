"""Forms of enrolment and link giving; the checklist part is built from the eligibility file."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, EmailField, Field, RadioField, SelectField, StringField
from wtforms.fields import TelField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Optional, Regexp, ValidationError

from pro_app.i18n import LANGUAGE_NAMES, _l
from pro_app.protocol.eligibility import Checklist
from pro_app.protocol.model import Arm
from pro_app.services.contact_formats import normalize_email, normalize_mobile
from pro_app.services.enrolment import STUDY_CODE

# Zones a patient of an Italian trial plausibly lives in; Europe/Rome is the trial's default.
TIMEZONES = (
    "Europe/Rome",
    "Europe/Zurich",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/London",
    "Europe/Bucharest",
    "Europe/Athens",
    "America/New_York",
)
# Stricter than the service's check: no markup or quoting characters in an address we store.
PLAIN_EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(\.[\w-]+)+\Z")
ELIGIBILITY_PREFIX = "eligibility_"
CHANNELS = (SelectChoice("email", _l("E-mail")), SelectChoice("sms", _l("Text message (SMS)")))
YES_NO = (SelectChoice("yes", _l("Yes")), SelectChoice("no", _l("No")))
STUDY_CODE_MESSAGE = _l(
    "The study code must be 3-40 capital letters, digits or '-' (e.g. MI01-0001)."
)


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _strip_upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _valid_email(_form: FlaskForm, field: Field) -> None:
    if field.data and (normalize_email(field.data) is None or not PLAIN_EMAIL.match(field.data)):
        raise ValidationError(str(_l("This is not a valid e-mail address.")))


def _valid_mobile(_form: FlaskForm, field: Field) -> None:
    if field.data and normalize_mobile(field.data) is None:
        raise ValidationError(
            str(_l("This is not a valid Italian mobile number (e.g. 347 123 4567)."))
        )


class DayField(DateField):
    """A date from the browser's date picker (ISO) or typed as dd/mm/yyyy, with our message."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError:
            self.data = None
            raise ValueError(str(_l("Enter the date as dd/mm/yyyy, e.g. 02/03/2026."))) from None


class EnrolmentForm(FlaskForm):
    """The patient's details; `build_enrolment_form` adds one yes/no field per criterion."""

    study_code = StringField(
        _l("Study code"),
        filters=[_strip_upper],
        validators=[
            DataRequired(_l("Enter the study code.")),
            Regexp(STUDY_CODE, message=STUDY_CODE_MESSAGE),
        ],
        description=_l("As on the randomization record, for example MI01-0001."),
        render_kw={"maxlength": 40, "autocomplete": "off", "spellcheck": "false"},
    )
    arm = RadioField(_l("Arm"), invalid_choice_message=_l("Choose the arm."))
    randomized_on = DayField(
        _l("Randomization date"),
        format=["%Y-%m-%d", "%d/%m/%Y"],
        validators=[InputRequired(_l("Enter the randomization date."))],
    )
    language = RadioField(
        _l("Language of the patient"),
        choices=[SelectChoice(code, name) for code, name in LANGUAGE_NAMES.items()],
        default="it",
        invalid_choice_message=_l("Choose Italian or English."),
    )
    timezone = SelectField(
        _l("Time zone"),
        choices=[SelectChoice(zone) for zone in TIMEZONES],
        default=TIMEZONES[0],
        invalid_choice_message=_l("Choose a time zone from the list."),
    )
    email = EmailField(
        _l("E-mail address"),
        filters=[_strip],
        validators=[Optional(), _valid_email],
        render_kw={"maxlength": 254, "autocomplete": "off"},
    )
    mobile = TelField(
        _l("Mobile number"),
        filters=[_strip],
        validators=[Optional(), _valid_mobile],
        description=_l("Italian mobile, for example 347 123 4567."),
        render_kw={"maxlength": 32, "autocomplete": "off"},
    )
    preferred_channel = RadioField(
        _l("Send messages by"),
        choices=list(CHANNELS),
        default="email",
        invalid_choice_message=_l("Choose e-mail or text message."),
    )
    birth_year = StringField(
        _l("Year of birth (optional)"),
        filters=[_strip],
        validators=[Optional(), Regexp(r"^\d{4}\Z", message=_l("Enter four digits, e.g. 1956."))],
        description=_l("If given, the patient types it when opening the link, as a second check."),
        render_kw={"maxlength": 4, "inputmode": "numeric", "class": "short"},
    )

    def eligibility_fields(self) -> list[Field]:
        """The checklist's yes/no fields, in the file's order."""
        return [field for field in self if field.name.startswith(ELIGIBILITY_PREFIX)]

    def eligibility_answers(self) -> dict[str, bool]:
        """Criterion code -> True for yes, False for no (unanswered criteria are left out)."""
        return {
            field.name.removeprefix(ELIGIBILITY_PREFIX): field.data == "yes"
            for field in self.eligibility_fields()
            if field.data in ("yes", "no")
        }

    def birth_year_value(self) -> int | None:
        return int(self.birth_year.data) if self.birth_year.data else None


def build_enrolment_form(
    checklist: Checklist,
    arms: Sequence[Arm],
    locale: str,
) -> EnrolmentForm:
    """The enrolment form for this checklist and these arms, in the page's language."""

    class Form(EnrolmentForm):
        pass

    for criterion in checklist.criteria:
        setattr(
            Form,
            ELIGIBILITY_PREFIX + criterion.code,
            RadioField(
                criterion.text(locale),
                choices=list(YES_NO),
                invalid_choice_message=_l("Answer yes or no."),
            ),
        )
    form = Form()
    form.arm.choices = [SelectChoice(arm.code, arm.label(locale)) for arm in arms]
    return form


class SendLinkForm(FlaskForm):
    channel = RadioField(
        _l("Channel"),
        choices=list(CHANNELS),
        invalid_choice_message=_l("Choose e-mail or text message."),
    )


class ReissueLinkForm(FlaskForm):
    confirm = BooleanField(
        _l("I understand that the current link stops working at once."),
        validators=[DataRequired(_l("Tick the box to confirm."))],
    )
