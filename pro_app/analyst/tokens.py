"""API tokens page: each analyst creates, sees and revokes their own tokens for scripts."""

from __future__ import annotations

from flask import (
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from pro_app.analyst import bp
from pro_app.extensions import db
from pro_app.i18n import _l
from pro_app.models import Role
from pro_app.models.types import utcnow
from pro_app.services import api_tokens
from pro_app.services.definitions import trial_schedule
from pro_app.staff.access import staff, staff_required


class NewTokenForm(FlaskForm):
    name = StringField(
        _l("Name of the token"),
        description=_l(
            "What the token is for, e.g. the project or the computer the script runs on."
        ),
        validators=[
            DataRequired(_l("Enter a name for the token.")),
            Length(
                max=api_tokens.NAME_MAX_LENGTH,
                message=_l(
                    "The name must be at most %(max)d characters long.",
                    max=api_tokens.NAME_MAX_LENGTH,
                ),
            ),
        ],
        render_kw={"autocomplete": "off", "maxlength": api_tokens.NAME_MAX_LENGTH},
    )


class RevokeTokenForm(FlaskForm):
    """Only the CSRF token: the token to revoke is in the address."""


@bp.route("/api-tokens", methods=["GET", "POST"])
@staff_required(*api_tokens.API_ROLES)
def api_token_list() -> ResponseReturnValue:
    """The user's tokens, the form for a new one, and how to use a token from R and Python."""
    form = NewTokenForm()
    if form.validate_on_submit():
        try:
            token, raw = api_tokens.create_token(staff(), form.name.data or "", utcnow())
        except api_tokens.ApiTokenError as refused:
            db.session.rollback()
            errors = form.name.errors if refused.field == "name" else form.form_errors
            errors.append(str(refused.message))
        else:
            db.session.commit()
            # Shown in this response only (never stored, not even in the session cookie); the
            # page is no-store, so neither the back button nor a cache brings it back.
            response = make_response(
                _page(NewTokenForm(formdata=None), {"id": token.id, "token": raw}, 200)
            )
            response.headers["Cache-Control"] = "no-store"
            return response
    return _page(form, None, 400 if form.errors else 200)


@bp.post("/api-tokens/<int:token_id>/revoke")
@staff_required(*api_tokens.API_ROLES)
def revoke_api_token(token_id: int) -> ResponseReturnValue:
    """Revoke a token now; scripts that use it get 401 from the next request on."""
    form = RevokeTokenForm()
    if not form.validate():
        abort(400)
    token = api_tokens.revoke_token(staff(), token_id, utcnow())
    if token is None:
        abort(404)
    db.session.commit()
    flash(
        _("The token %(name)s is revoked: scripts that use it no longer work.", name=token.name),
        "success",
    )
    return redirect(url_for("analyst.api_token_list"))


def _page(
    form: NewTokenForm, created: dict[str, object] | None, status: int
) -> ResponseReturnValue:
    user = staff()
    now = utcnow()
    others = api_tokens.active_tokens_of_others(user, now) if user.has_role(Role.ADMIN) else []
    return render_template(
        "analyst/tokens.html",
        form=form,
        revoke_form=RevokeTokenForm(),
        tokens=api_tokens.tokens_of(user),
        others=others,
        created=created,
        now=now,
        api_url=_api_url(),
        example_timepoint=trial_schedule().timepoints[0].code,
        status_labels=STATUS_LABELS,
    ), status


STATUS_LABELS = {
    "active": _l("Active"),
    "revoked": _l("Revoked"),
    "expired": _l("Expired"),
}


def _api_url() -> str:
    path = url_for("api.exports")
    base_url = current_app.config.get("BASE_URL")
    return f"{str(base_url).rstrip('/')}{path}" if base_url else request.host_url.rstrip("/") + path
