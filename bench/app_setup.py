"""What the benchmarks that serve the app over HTTP share: its database, the --postgres option.

The app is built with the tests' configuration (tests/conftest.py make_config), so the server
that tests/reliability/live_server.py starts uses the same secret key and opens the links
enrolled here.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask

from bench.common import reset_schema
from pro_app import create_app
from pro_app.extensions import db
from tests.conftest import make_config


def add_postgres_argument(parser: argparse.ArgumentParser) -> None:
    """--postgres URI, defaulting to $PRO_BENCH_POSTGRES_URI (none: SQLite only)."""
    parser.add_argument(
        "--postgres",
        default=os.environ.get("PRO_BENCH_POSTGRES_URI", ""),
        help="PostgreSQL URI (its public schema is dropped!); default $PRO_BENCH_POSTGRES_URI",
    )


@contextmanager
def emptied_schema(uri: str) -> Iterator[str]:
    """The PostgreSQL database's `public` schema emptied for the block, and left empty after."""
    reset_schema(uri)
    try:
        yield uri
    finally:
        reset_schema(uri)


def prepared_app(uri: str, **overrides: Any) -> Flask:
    """An app on an empty schema (the tests' configuration, with these overrides)."""
    app = create_app(make_config(uri, **overrides))
    with app.app_context():
        db.create_all()
    return app


def dispose(app: Flask) -> None:
    """Close the app's database connections (before its schema is dropped)."""
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
