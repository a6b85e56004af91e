"""Database engine settings that SQLAlchemy does not apply by itself."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 5000


def init_app(app: Flask) -> None:
    """SQLite: its folder and pool; connection pragmas are set by the listener below."""
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite:///") and uri != "sqlite:///:memory:":
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if uri.startswith("sqlite"):
        # A local file never drops a connection: the ping before each request would only cost
        # a statement (PostgreSQL keeps it, to survive a database restart).
        options = dict(app.config["SQLALCHEMY_ENGINE_OPTIONS"])
        options["pool_pre_ping"] = False
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


@event.listens_for(Engine, "connect")
def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # SQLite leaves foreign keys off and fails at once on a lock unless told otherwise; WAL lets
    # readers go on while one writer writes.
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # Write transactions begin immediately. pysqlite's own transaction control (the default
    # until Python 3.16) reads outside transactions and begins one just before the first
    # INSERT, UPDATE or DELETE; "IMMEDIATE" makes that BEGIN IMMEDIATE, which waits up to
    # busy_timeout for the write lock. A transaction begun earlier (SQLAlchemy-emitted BEGIN,
    # Python's autocommit=False) that read first could not wait: SQLite refuses its upgrade to
    # writing at once ("database is locked") when another writer committed meanwhile. Reads
    # never take the lock, so a long export blocks no patient. tests/reliability pins all this.
    dbapi_connection.isolation_level = "IMMEDIATE"
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()
