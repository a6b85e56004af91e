"""Forms of the administration pages: accounts, passwords, sites."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, Field, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from pro_app.extensions import db
from pro_app.i18n import LANGUAGE_NAMES, _l, supported_locales
from pro_app.models import Role, Site
from pro_app.services.accounts import MARKUP, SITE_BOUND_ROLES
from pro_app.services.contact_formats import normalize_email
from pro_app.services.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from pro_app.staff.navigation import ROLE_LABELS

PASSWORD_LENGTH = _l(
    "The password must be %(min)d-%(max)d characters long.",
    min=MIN_PASSWORD_LENGTH,
    max=MAX_PASSWORD_LENGTH,
)


def no_markup(_form: FlaskForm, field: Field) -> None:
    """Refuse < and > (no markup in names that many pages show)."""
    if field.data and MARKUP.search(str(field.data)):
        raise ValidationError(_l("Please do not use the characters < and >."))


def valid_email(_form: FlaskForm, field: Field) -> None:
    if field.data and normalize_email(field.data) is None:
        raise ValidationError(_l("This is not a valid e-mail address."))


def _name_field() -> StringField:
    return StringField(
        _l("Full name"),
        validators=[
            DataRequired(_l("Enter a name.")),
            Length(max=200, message=_l("The name must be at most 200 characters long.")),
            no_markup,
        ],
        render_kw={"autocomplete": "off", "maxlength": 200},
    )


def _password_field(label: Any) -> PasswordField:
    return PasswordField(
        label,
        description=_l("8 to 128 characters, no other rules. Give it to the person in private."),
        validators=[
            DataRequired(_l("Enter a password.")),
            Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH, message=PASSWORD_LENGTH),
        ],
        render_kw={"autocomplete": "new-password", "maxlength": MAX_PASSWORD_LENGTH},
    )


class ProfileForm(FlaskForm):
    """Name, role, site and language: shared by the add and the edit forms."""

    name = _name_field()
    role = SelectField(_l("Role"), validators=[DataRequired(_l("Choose a role."))])
    site = SelectField(
        _l("Site"),
        description=_l("Required for nurses and investigators; leave empty for all sites."),
    )
    language = SelectField(_l("Language of the staff pages"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.role.choices = [(role.value, str(ROLE_LABELS[role.value])) for role in Role]
        sites = db.session.scalars(db.select(Site).order_by(Site.code))
        self.site.choices = [("", str(_l("All sites")))] + [
            (str(site.id), f"{site.code} – {site.name}") for site in sites
        ]
        self.language.choices = [
            (code, LANGUAGE_NAMES.get(code, code)) for code in supported_locales()
        ]

    def validate_site(self, field: Field) -> None:
        if self.role.data in SITE_BOUND_ROLES and not field.data:
            raise ValidationError(_l("Nurses and investigators must belong to a site."))

    def chosen_site(self) -> Site | None:
        """The site picked in the list (None = all sites)."""
        return db.session.get(Site, int(self.site.data)) if self.site.data else None


class AddAccountForm(ProfileForm):
    email = EmailField(
        _l("E-mail address"),
        validators=[
            DataRequired(_l("Enter the e-mail address.")),
            Length(max=254, message=_l("The e-mail address is too long.")),
            valid_email,
            no_markup,
        ],
        render_kw={"autocomplete": "off", "maxlength": 254},
    )
    password = _password_field(_l("Initial password"))


class EditAccountForm(ProfileForm):
    is_active = BooleanField(_l("Account active (can sign in)"))


class PasswordResetForm(FlaskForm):
    password = _password_field(_l("New password"))
    confirm = PasswordField(
        _l("Repeat the new password"),
        validators=[
            DataRequired(_l("Repeat the new password.")),
            EqualTo("password", message=_l("The two passwords are not the same.")),
        ],
        render_kw={"autocomplete": "new-password", "maxlength": MAX_PASSWORD_LENGTH},
    )


class SiteForm(FlaskForm):
    code = StringField(
        _l("Site code"),
        description=_l("1-20 capital letters, digits, '-' or '_' (e.g. MI01)."),
        validators=[
            DataRequired(_l("Enter the site code.")),
            Length(max=20, message=_l("The site code must be at most 20 characters long.")),
        ],
        render_kw={"autocomplete": "off", "maxlength": 20},
    )
    name = StringField(
        _l("Site name"),
        validators=[
            DataRequired(_l("Enter the site name.")),
            Length(max=200, message=_l("The site name must be 1-200 characters long.")),
            no_markup,
        ],
        render_kw={"autocomplete": "off", "maxlength": 200},
    )
