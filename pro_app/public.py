"""Pages for anyone: the front page and the language choice."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Flask, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from pro_app.i18n import LOCALE_SESSION_KEY, supported_locales

bp = Blueprint("public", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


@bp.get("/")
def index() -> ResponseReturnValue:
    """What this service is, for someone who arrives without a personal link."""
    return render_template("index.html")


@bp.post("/language")
def choose_language() -> ResponseReturnValue:
    """Remember the language chosen on the page, then return to where the user was."""
    locale = request.form.get("locale", "")
    if locale in supported_locales():
        session[LOCALE_SESSION_KEY] = locale
    return redirect(same_site_path(request.form.get("next")) or url_for("public.index"))


def same_site_path(target: str | None) -> str | None:
    """The target if it is a path on this site, else None (never redirect to another site)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target
