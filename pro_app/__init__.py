"""PRO app: patient-reported outcomes for a randomized trial."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from pro_app import (
    analyst,
    api,
    auth,
    cli,
    database,
    devtools,
    errors,
    health,
    i18n,
    logs,
    models,  # noqa: F401  (registers every table on the metadata)
    patient,
    public,
    security,
    staff,
)
from pro_app.config import check_configuration, load_config
from pro_app.extensions import csrf, db, limiter, migrate
from pro_app.services import definitions, senders


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application: configuration first, then one register step per concern."""
    app = Flask(__name__, instance_relative_config=True)
    load_config(app, config)
    check_configuration(app)
    logs.init_app(app)
    register_extensions(app)
    definitions.init_app(app)
    senders.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    health.init_app(app)
    public.init_app(app)
    patient.init_app(app)
    auth.init_app(app)
    staff.init_app(app)
    analyst.init_app(app)
    api.init_app(app)
    devtools.init_app(app)
    cli.init_app(app)
    return app


def register_extensions(app: Flask) -> None:
    """Bind the unbound extensions of extensions.py to this app."""
    database.init_app(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(database.MIGRATIONS_DIR), render_as_batch=True)
    i18n.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
