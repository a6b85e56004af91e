"""Administration: staff accounts (add, change, deactivate, unlock, reset password) and sites."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_wtf import FlaskForm

from pro_app.extensions import db
from pro_app.models import Role, Site, StaffUser
from pro_app.models.types import utcnow
from pro_app.services import accounts, audit
from pro_app.staff import bp
from pro_app.staff.access import staff, staff_required
from pro_app.staff.admin_forms import (
    AddAccountForm,
    EditAccountForm,
    PasswordResetForm,
    SiteForm,
)

admin_only = staff_required(Role.ADMIN)


@bp.route("/admin/accounts", methods=["GET", "POST"])
@admin_only
def admin_accounts() -> ResponseReturnValue:
    """Every account, and the form to add one."""
    form = AddAccountForm()
    if form.validate_on_submit():
        try:
            user = accounts.add_staff(
                form.email.data or "",
                form.name.data or "",
                form.role.data or "",
                form.password.data or "",
                form.chosen_site(),
                form.language.data or "",
                actor=audit.Actor.staff(staff().id),
            )
        except accounts.AccountError as error:
            db.session.rollback()
            _field_error(form, error)
        else:
            db.session.commit()
            flash(_("Account %(email)s added.", email=user.email), "success")
            return redirect(url_for("staff.admin_accounts"))
    users = db.session.scalars(db.select(StaffUser).order_by(StaffUser.email))
    status = 400 if form.errors else 200
    return render_template(
        "staff/admin_accounts.html", form=form, users=list(users), now=utcnow()
    ), status


@bp.route("/admin/accounts/<int:user_id>", methods=["GET", "POST"])
@admin_only
def admin_account(user_id: int) -> ResponseReturnValue:
    """One account: its profile and the actions on it."""
    user = _user_or_404(user_id)
    form = EditAccountForm()
    if not form.is_submitted():
        form = _profile_form(user)
    if form.validate_on_submit():
        changes = accounts.AccountChanges(
            name=form.name.data or "",
            role=form.role.data or "",
            site=form.chosen_site(),
            language=form.language.data or "",
            is_active=bool(form.is_active.data),
        )
        try:
            changed = accounts.update_account(user, changes, staff(), utcnow())
        except accounts.AccountError as error:
            db.session.rollback()
            _field_error(form, error)
        else:
            db.session.commit()
            if changed:
                flash(_("Changes saved."), "success")
            else:
                flash(_("Nothing was changed."), "info")
            return redirect(url_for("staff.admin_account", user_id=user.id))
    return _account_page(user, form=form)


@bp.post("/admin/accounts/<int:user_id>/password")
@admin_only
def admin_reset_password(user_id: int) -> ResponseReturnValue:
    """The administrator sets a new password (to hand over in person)."""
    user = _user_or_404(user_id)
    form = PasswordResetForm()
    if form.validate_on_submit():
        try:
            accounts.reset_password(user, form.password.data or "", staff(), utcnow())
        except accounts.AccountError as error:
            db.session.rollback()
            _field_error(form, error)
        else:
            db.session.commit()
            flash(_("The new password is set. Give it to the person in private."), "success")
            return redirect(url_for("staff.admin_account", user_id=user.id))
    return _account_page(user, password_form=form)


@bp.post("/admin/accounts/<int:user_id>/unlock")
@admin_only
def admin_unlock(user_id: int) -> ResponseReturnValue:
    """Clear a lockout after too many failed sign-ins."""
    user = _user_or_404(user_id)
    if accounts.unlock(user, staff()):
        db.session.commit()
        flash(_("The account is unlocked."), "success")
    else:
        flash(_("The account was not locked."), "info")
    return redirect(url_for("staff.admin_account", user_id=user.id))


@bp.post("/admin/accounts/<int:user_id>/deactivate")
@admin_only
def admin_deactivate(user_id: int) -> ResponseReturnValue:
    """Stop an account from signing in; its open sessions end at once."""
    return _set_active(user_id, is_active=False)


@bp.post("/admin/accounts/<int:user_id>/reactivate")
@admin_only
def admin_reactivate(user_id: int) -> ResponseReturnValue:
    """Let a deactivated account sign in again."""
    return _set_active(user_id, is_active=True)


@bp.route("/admin/sites", methods=["GET", "POST"])
@admin_only
def admin_sites() -> ResponseReturnValue:
    """Every site, and the form to add one."""
    form = SiteForm()
    if form.validate_on_submit():
        try:
            site = accounts.add_site(
                form.code.data or "", form.name.data or "", audit.Actor.staff(staff().id)
            )
        except accounts.AccountError as error:
            db.session.rollback()
            _field_error(form, error)
        else:
            db.session.commit()
            flash(_("Site %(code)s added.", code=site.code), "success")
            return redirect(url_for("staff.admin_sites"))
    sites = db.session.scalars(db.select(Site).order_by(Site.code))
    status = 400 if form.errors else 200
    return render_template("staff/admin_sites.html", form=form, sites=list(sites)), status


def _set_active(user_id: int, *, is_active: bool) -> ResponseReturnValue:
    user = _user_or_404(user_id)
    try:
        changed = accounts.set_active(user, is_active, staff(), utcnow())
    except accounts.AccountError as error:
        db.session.rollback()
        return _account_page(user, action_error=str(error.message))
    db.session.commit()
    if changed:
        flash(
            _("The account is active again.")
            if is_active
            else _("The account is deactivated and its sessions have ended."),
            "success",
        )
    return redirect(url_for("staff.admin_account", user_id=user.id))


def _account_page(
    user: StaffUser,
    *,
    form: EditAccountForm | None = None,
    password_form: PasswordResetForm | None = None,
    action_error: str | None = None,
) -> ResponseReturnValue:
    form = form or _profile_form(user)
    password_form = password_form or PasswordResetForm(formdata=None)
    refused = bool(form.errors or password_form.errors or action_error)
    html = render_template(
        "staff/admin_account_form.html",
        user=user,
        form=form,
        password_form=password_form,
        action_error=action_error,
        now=utcnow(),
    )
    return html, 400 if refused else 200


def _user_or_404(user_id: int) -> StaffUser:
    user = db.session.get(StaffUser, user_id)
    if user is None:
        abort(404)
    return user


def _profile_form(user: StaffUser) -> EditAccountForm:
    """The edit form filled from the account as it is now."""
    form = EditAccountForm(formdata=None, obj=user)
    form.site.data = str(user.site_id) if user.site_id else ""
    return form


def _field_error(form: FlaskForm, error: accounts.AccountError) -> None:
    """Show the service's refusal next to the field it concerns (or at the top)."""
    field = getattr(form, error.field or "", None)
    target = field if field is not None and hasattr(field, "errors") else None
    if target is None:
        form.form_errors.append(str(error.message))
    else:
        target.errors = [*target.errors, str(error.message)]
