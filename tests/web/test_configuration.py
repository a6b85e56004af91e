"""Configuration: defaults, PRO_* variables, development conveniences, production refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from pro_app import create_app
from pro_app.config import ConfigurationError, configuration_problems
from tests.conftest import TEST_SECRET_KEY


def test_environment_variables_override_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PRO_ENV", "development")
    monkeypatch.setenv("PRO_SQLALCHEMY_DATABASE_URI", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    monkeypatch.setenv("PRO_MAIL_PORT", "2525")
    monkeypatch.setenv("PRO_TIMEZONE", "Europe/Rome")
    app = create_app({"SECRET_KEY": TEST_SECRET_KEY})
    assert app.config["MAIL_PORT"] == 2525  # JSON-decoded, not the string "2525"
    assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("x.sqlite3")


def test_production_without_secret_key_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRO_SECRET_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="PRO_SECRET_KEY"):
        create_app({"ENV": "production", "BASE_URL": "https://pro.example.test"})


def test_production_is_the_default_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRO_ENV", raising=False)
    with pytest.raises(ConfigurationError):
        create_app({"SECRET_KEY": None})


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"SECRET_KEY": "dev"}, "PRO_SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "PRO_SECRET_KEY"),
        ({"DEBUG": True}, "Debug mode"),
        ({"BASE_URL": None}, "PRO_BASE_URL must be set"),
        ({"BASE_URL": "http://pro.example.test"}, "https://"),
        ({"SESSION_COOKIE_SECURE": False}, "Secure"),
        ({"ENV": "staging"}, "PRO_ENV must be one of"),
        ({"MAIL_BACKEND": "smtp", "MAIL_SENDER": None}, "PRO_MAIL_SENDER"),
    ],
)
def test_unsafe_production_settings_are_named(overrides: dict, expected: str) -> None:
    config = {
        "ENV": "production",
        "SECRET_KEY": TEST_SECRET_KEY,
        "BASE_URL": "https://pro.example.test",
        "SESSION_COOKIE_SECURE": True,
        **overrides,
    }
    problems = configuration_problems(config)
    assert any(expected in problem for problem in problems), problems


def test_safe_production_settings_start(tmp_path: Path) -> None:
    app = create_app(
        {
            "ENV": "production",
            "SECRET_KEY": TEST_SECRET_KEY,
            "BASE_URL": "https://pro.example.test",
            "MAIL_SENDER": "questionari@pro.example.test",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.sqlite3'}",
        }
    )
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_development_generates_a_secret_key_once(tmp_path: Path) -> None:
    def build() -> str:
        app = create_app(
            {"ENV": "development", "SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": None}
        )
        return str(app.config["SECRET_KEY"])

    import flask

    original = flask.Flask.auto_find_instance_path
    try:
        flask.Flask.auto_find_instance_path = lambda self: str(tmp_path / "instance")  # type: ignore[method-assign]
        first, second = build(), build()
    finally:
        flask.Flask.auto_find_instance_path = original  # type: ignore[method-assign]
    assert first == second
    assert len(first) >= 64
    key_file = tmp_path / "instance" / "secret_key"
    assert key_file.read_text().strip() == first
    assert key_file.stat().st_mode & 0o077 == 0


def test_sqlite_connections_enforce_foreign_keys_and_wait_for_locks(app_context: None) -> None:
    from sqlalchemy import text

    from pro_app.extensions import db

    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas")
    assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert db.session.execute(text("PRAGMA busy_timeout")).scalar() == 5000
    assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
