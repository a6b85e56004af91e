"""Shared fixtures: an app on a real database (SQLite per test, or PostgreSQL when asked)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_migrate import upgrade
from sqlalchemy import create_engine, text

from pro_app import create_app
from pro_app.extensions import db
from pro_app.services import passwords, staff_sessions

POSTGRES_URI = os.environ.get("PRO_TEST_DATABASE_URI", "")
TEST_SECRET_KEY = "test-secret-key-" + "x" * 32


def make_config(database_uri: str, **overrides: Any) -> dict[str, Any]:
    """The configuration every test app starts from."""
    return {
        "ENV": "development",
        "TESTING": True,
        "SECRET_KEY": TEST_SECRET_KEY,
        "SQLALCHEMY_DATABASE_URI": database_uri,
        "BASE_URL": "https://pro.example.test",
        "MAIL_BACKEND": "memory",
        "SMS_BACKEND": "memory",
        "MAIL_SENDER": "Questionari <questionari@pro.example.test>",
        **overrides,
    }


# argon2id at its production cost (64 MiB, 3 passes) takes ~60 ms a hash: every staff account
# and sign-in of the suite would add minutes. Tests marked real_password_hashes keep it.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
CHEAP_DUMMY_HASH = CHEAP_HASHER.hash("not-a-real-password")


@pytest.fixture(autouse=True)
def cheap_password_hashes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Light argon2 parameters in this process (servers started by tests keep the real ones)."""
    if request.node.get_closest_marker("real_password_hashes"):
        return
    monkeypatch.setattr(passwords, "HASHER", CHEAP_HASHER)
    monkeypatch.setattr(staff_sessions, "_DUMMY_HASH", CHEAP_DUMMY_HASH)


@pytest.fixture(scope="session")
def postgres_uri() -> Iterator[str]:
    """A clean PostgreSQL schema for the session, when PRO_TEST_DATABASE_URI is set."""
    if not POSTGRES_URI:
        yield ""
        return
    engine = create_engine(POSTGRES_URI)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    yield POSTGRES_URI


@pytest.fixture
def database_uri(tmp_path: Path, postgres_uri: str) -> str:
    """The database of one test: a fresh SQLite file, or the session's PostgreSQL schema."""
    return postgres_uri or f"sqlite:///{tmp_path / 'test.sqlite3'}"


@pytest.fixture
def app_config(database_uri: str) -> dict[str, Any]:
    """Override in a test module to change the configuration of `app`."""
    return make_config(database_uri)


@pytest.fixture
def app(app_config: dict[str, Any], tmp_path: Path) -> Iterator[Flask]:
    """An app with its schema created (by the migrations) and emptied again after the test."""
    application = create_app(app_config)
    application.instance_path = str(tmp_path / "instance")
    with application.app_context():
        _create_schema(application)
    # No context stays pushed during the test: each request gets its own, as in production
    # (a shared one would share g, the locale cache and the database session across requests).
    yield application
    with application.app_context():
        db.session.remove()
        _empty_database()
        db.engine.dispose()


@pytest.fixture
def app_context(app: Flask) -> Iterator[None]:
    """For tests that call services directly rather than through requests."""
    with app.app_context():
        yield
        db.session.rollback()


def _create_schema(_application: Flask) -> None:
    if db.engine.dialect.name != "postgresql":
        # A fresh file per test; create_all is quicker than migrating, and test_migrations
        # proves the migrations build the very same schema.
        db.create_all()
        return
    # One migration run per session: later tests find the schema and only need it emptied.
    with db.engine.connect() as connection:
        has_schema = connection.execute(text("SELECT to_regclass('public.patient')")).scalar()
    if not has_schema:
        upgrade()


def _empty_database() -> None:
    if db.engine.dialect.name != "postgresql":
        return  # SQLite files live in tmp_path and vanish with it
    tables = ", ".join(table.name for table in db.metadata.sorted_tables)
    with db.engine.begin() as connection:
        # TRUNCATE is not an UPDATE or DELETE: the audit trail's triggers rightly let it pass.
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()
