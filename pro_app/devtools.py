"""Development only: the messages the file backends "sent", so a newcomer can open their links."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, render_template
from flask.typing import ResponseReturnValue

from pro_app.messaging import read_outbox_files

bp = Blueprint("devtools", __name__, url_prefix="/dev")


def init_app(app: Flask) -> None:
    """Registered only when PRO_ENV=development: production never serves these pages."""
    if app.config["ENV"] == "development":
        app.register_blueprint(bp)


@bp.get("/outbox")
def outbox() -> ResponseReturnValue:
    """Messages written by the file mail and SMS backends, newest first."""
    folders = {current_app.config["MAIL_FILE_DIR"], current_app.config["SMS_FILE_DIR"]}
    messages = sorted(
        (message for folder in folders for message in read_outbox_files(folder)),
        key=lambda message: message["sent_at"],
        reverse=True,
    )
    return render_template("devtools/outbox.html", messages=messages)
