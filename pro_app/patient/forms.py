"""The link's start form (the questionnaire pages are built from the instrument definitions)."""

from __future__ import annotations

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import IntegerField
from wtforms.validators import NumberRange, Optional

from pro_app.i18n import _l
from pro_app.models import PatientLink


class StartForm(FlaskForm):
    birth_year = IntegerField(
        _l("Your year of birth"),
        validators=[Optional(), NumberRange(min=1900, max=2100)],
        render_kw={"inputmode": "numeric", "autocomplete": "bday-year"},
    )

    @property
    def asks_birth_year(self) -> bool:
        """The optional second factor, switched on by configuration."""
        return bool(current_app.config["PATIENT_SECOND_FACTOR"])

    def second_factor_matches(self, link: PatientLink) -> bool:
        """Whether the year of birth, when asked and known, is the one recorded at enrolment."""
        contact = link.patient.contact
        if not self.asks_birth_year or contact is None or contact.birth_year is None:
            return True
        return self.birth_year.data == contact.birth_year
