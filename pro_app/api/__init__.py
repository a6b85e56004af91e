"""The read-only JSON API for scripts (R, Python): the exports, with a personal bearer token."""

from flask import Blueprint, Flask

from pro_app.extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def init_app(app: Flask) -> None:
    # Importing the view module attaches its routes, error handlers and rate limit.
    from pro_app.api import views  # noqa: F401

    # The API reads no cookie, only the Authorization header: there is no session to forge.
    csrf.exempt(bp)
    app.register_blueprint(bp)
