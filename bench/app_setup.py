"""What the benchmarks share to set up the app: its database, the --postgres option.

The app is built with the tests' configuration (tests/conftest.py make_config), so a server
that tests/reliability/live_server.py starts uses the same secret key and opens the links
enrolled here. PostgreSQL databases are emptied or created per run; never the suite's `test`.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any, TextIO

from flask import Flask
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from pro_app import create_app
from pro_app.extensions import db
from pro_app.logs import process_handler
from tests.conftest import make_config

# The main test suite's database: no bench ever empties it.
PROTECTED_DATABASES = frozenset({"test"})


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


def bench_app(uri: str, **overrides: Any) -> Flask:
    """The app with the tests' configuration and these overrides, its log lines discarded.

    The lines are still formatted and written, so their cost stays in the figures, but to
    /dev/null: thousands of "message sent" lines would bury the figures in the output.
    """
    handler = process_handler("text")
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(_devnull())
    logging.getLogger("pro_app").addHandler(handler)
    return create_app(make_config(uri, **overrides))


@cache
def _devnull() -> TextIO:
    """/dev/null, opened once for the process's whole life (every app's log lines go there)."""
    return open(os.devnull, "w")


def prepared_app(uri: str, **overrides: Any) -> Flask:
    """An app on an empty schema (the tests' configuration, with these overrides)."""
    app = bench_app(uri, **overrides)
    with app.app_context():
        db.create_all()
    return app


def dispose(app: Flask) -> None:
    """Close the app's database connections (before its schema is dropped)."""
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@contextmanager
def plain_message_if_unreachable(uri: str) -> Iterator[None]:
    """A missing or unreachable database ends the benchmark with one line, not a traceback."""
    try:
        yield
    except OperationalError as error:
        name = make_url(uri).database or ""
        raise SystemExit(
            f"Cannot open the benchmark database {name!r}: {error.orig}\n"
            f"Create it first (createdb -h HOST -U USER {name}) or pass another URI "
            "with --postgres."
        ) from None


def reset_schema(uri: str) -> None:
    """Drop and create the `public` schema of a PostgreSQL database (never the tests' one)."""
    name = make_url(uri).database or ""
    if name in PROTECTED_DATABASES:
        raise SystemExit(
            f"Refusing to empty the database {name!r}: the test suite uses it. "
            "Create one for benchmarks (createdb bench_pro) and pass its URI."
        )
    engine = create_engine(uri)
    with plain_message_if_unreachable(uri), engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@contextmanager
def scratch_database(server_uri: str, name: str) -> Iterator[str]:
    """A new, empty PostgreSQL database `name` on the server of `server_uri`; dropped after."""
    if name in PROTECTED_DATABASES:
        raise SystemExit(f"Refusing to use the database {name!r}: the test suite uses it.")
    admin = create_engine(server_uri, isolation_level="AUTOCOMMIT")
    quoted = admin.dialect.identifier_preparer.quote(name)
    with plain_message_if_unreachable(server_uri), admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {quoted}"))
        connection.execute(text(f"CREATE DATABASE {quoted}"))
    try:
        yield make_url(server_uri).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
        admin.dispose()
