"""/healthz: is the app up, can it reach its database, and is the scheduler passing.

Public: it says ok or not and nothing about the trial (no counts of any kind).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from pro_app.extensions import db
from pro_app.models.types import utcnow
from pro_app.services.metrics import last_dispatcher_run, scheduler_state

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """200 with database ok, or 503 with database unreachable (for load balancers and monitors).

    `scheduler` (ok, late, never; unknown if its table cannot be read) only informs: a late
    scheduler delays messages but the web app still serves, so the status stays 200.
    """
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        log.warning("health check: database unreachable (%s)", type(error).__name__)
        db.session.rollback()
        return jsonify(status="error", database="unreachable"), 503
    return jsonify(status="ok", database="ok", scheduler=_scheduler())


def _scheduler() -> str:
    try:
        last_run_at = last_dispatcher_run()
    except SQLAlchemyError as error:
        # The schema is not there yet (before init-db): the database itself answered.
        log.warning("health check: scheduler lease unreadable (%s)", type(error).__name__)
        db.session.rollback()
        return "unknown"
    interval = float(current_app.config["SCHEDULER_INTERVAL_SECONDS"])
    return scheduler_state(last_run_at, utcnow(), interval).value
