"""Signing staff in and out. The cookie holds only a session token that sign-out revokes."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, g, redirect, render_template, request, session
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user, logout_user

from pro_app.auth.forms import SignInForm
from pro_app.extensions import db, limiter, login_manager
from pro_app.i18n import LOCALE_SESSION_KEY, _l
from pro_app.models import StaffUser
from pro_app.models.types import utcnow
from pro_app.public import same_site_path
from pro_app.services import staff_sessions

bp = Blueprint("auth", __name__, url_prefix="/auth", template_folder="templates")


def init_login_manager(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.sign_in"
    login_manager.login_message = _l("Please sign in to see this page.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = None  # server-side sessions do this job, and revoke too


@login_manager.user_loader
def load_user(token: str) -> StaffUser | None:
    loaded = staff_sessions.load_session(token, utcnow())
    if loaded is None:
        return None
    g.staff_session_token = token
    g.staff_locale = loaded.user.language
    return loaded.user


def _sign_in_limit() -> str:
    return str(current_app.config["STAFF_SIGN_IN_RATE_LIMIT"])


@bp.route("/sign-in", methods=["GET", "POST"])
@limiter.limit(_sign_in_limit, methods=["POST"])
def sign_in() -> ResponseReturnValue:
    """E-mail and password; on success a fresh session (nothing of the old one is kept)."""
    if current_user.is_authenticated:
        return redirect(_next_page())
    form = SignInForm()
    error = None
    if form.validate_on_submit():
        now = utcnow()
        try:
            user = staff_sessions.check_credentials(
                form.email.data or "", form.password.data or "", now
            )
        except staff_sessions.SignInError as refused:
            error = refused.message
        else:
            target = _next_page()
            locale = session.get(LOCALE_SESSION_KEY)
            session.clear()  # a new session at sign-in: no fixation
            if locale:
                session[LOCALE_SESSION_KEY] = locale
            g.staff_session_token = staff_sessions.open_session(user, now)
            login_user(user)
            db.session.commit()
            return redirect(target)
    status = 200 if error is None and not form.errors else 400
    return render_template("auth/sign_in.html", form=form, error=error), status


@bp.post("/sign-out")
def sign_out() -> ResponseReturnValue:
    """Revoke the session on the server, then forget it in the browser."""
    token = g.get("staff_session_token") if current_user.is_authenticated else None
    if token:
        staff_sessions.revoke(token, utcnow())
        db.session.commit()
    logout_user()
    session.clear()
    return redirect("/auth/sign-in?signed_out=1")


def _next_page() -> str:
    return same_site_path(request.args.get("next")) or "/staff/"
