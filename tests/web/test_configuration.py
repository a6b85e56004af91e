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


POSTGRES_EXAMPLE = "postgresql+psycopg://pro:secret@127.0.0.1:5432/pro"


def _production(**overrides: object) -> dict[str, object]:
    """A production configuration with nothing wrong, then the overrides."""
    return {
        "ENV": "production",
        "SECRET_KEY": TEST_SECRET_KEY,
        "BASE_URL": "https://pro.example.test",
        "SESSION_COOKIE_SECURE": True,
        "MAIL_BACKEND": "smtp",
        "MAIL_SENDER": "questionari@pro.example.test",
        "SMS_BACKEND": "http",
        "SQLALCHEMY_DATABASE_URI": POSTGRES_EXAMPLE,
        "RATELIMIT_STORAGE_URI": "memory://",
        "WEB_WORKERS": 1,
        **overrides,
    }


def test_the_reference_production_configuration_has_no_problem() -> None:
    assert configuration_problems(_production()) == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"SQLALCHEMY_DATABASE_URI": "sqlite://"}, "in-memory SQLite"),
        ({"SQLALCHEMY_DATABASE_URI": "sqlite:///:memory:"}, "in-memory SQLite"),
        (
            {"SQLALCHEMY_DATABASE_URI": "sqlite:///file:pro?mode=memory&uri=true"},
            "in-memory SQLite",
        ),
        ({"SQLALCHEMY_DATABASE_URI": "not a url"}, "not a database URL"),
        (
            {"SQLALCHEMY_DATABASE_URI": "sqlite:////var/lib/pro/p.sqlite3", "WEB_WORKERS": 2},
            "SQLite with several web workers (PRO_WEB_WORKERS=2): use PostgreSQL",
        ),
        ({"LINK_SECRET": "CHANGE-ME"}, "PRO_LINK_SECRET, when set, must be"),
        ({"LINK_SECRET": ""}, "PRO_LINK_SECRET, when set, must be"),
        ({"WEB_WORKERS": "two"}, "PRO_WEB_WORKERS must be a whole number"),
        ({"WEB_WORKERS": 0}, "PRO_WEB_WORKERS must be a whole number"),
        ({"MAIL_BACKEND": "console"}, "PRO_MAIL_BACKEND=console delivers no e-mail"),
        ({"MAIL_BACKEND": "file"}, "PRO_MAIL_BACKEND=file delivers no e-mail"),
        ({"MAIL_BACKEND": "memory"}, "PRO_MAIL_BACKEND=memory delivers no e-mail"),
        ({"SMS_BACKEND": "FILE"}, "PRO_SMS_BACKEND=file delivers no SMS"),
        ({"SMS_BACKEND": "memory"}, "PRO_SMS_BACKEND=memory delivers no SMS"),
        (
            {"WEB_WORKERS": 3},
            "PRO_RATELIMIT_STORAGE_URI=memory:// with several web workers (PRO_WEB_WORKERS=3)",
        ),
    ],
)
def test_production_refuses_what_would_lose_data_or_messages(
    overrides: dict[str, object], expected: str
) -> None:
    problems = configuration_problems(_production(**overrides))
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize(
    "overrides",
    [
        # One worker: a SQLite file and per-process limit counters are both fine.
        {"SQLALCHEMY_DATABASE_URI": "sqlite:////var/lib/pro/p.sqlite3", "WEB_WORKERS": 1},
        # The test suite builds production apps with the in-memory senders.
        {"TESTING": True, "MAIL_BACKEND": "memory", "SMS_BACKEND": "memory"},
        # A trial that sends no SMS.
        {"SMS_BACKEND": "off"},
        {"LINK_SECRET": "l" * 32},
    ],
)
def test_production_accepts(overrides: dict[str, object]) -> None:
    assert configuration_problems(_production(**overrides)) == []


def test_development_backends_are_not_judged_outside_production() -> None:
    development = _production(ENV="development", MAIL_BACKEND="file", SMS_BACKEND="file")
    assert configuration_problems({**development, "WEB_WORKERS": 4}) == []


def test_redis_rate_limit_storage_needs_the_redis_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    shared = _production(WEB_WORKERS=4, RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/3")
    real_find_spec = importlib.util.find_spec

    def without_redis(name: str, *args: object) -> object:
        return None if name == "redis" else real_find_spec(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", without_redis)
    problems = configuration_problems(shared)
    assert problems == [
        "PRO_RATELIMIT_STORAGE_URI uses redis:// but the Python package redis is not installed "
        "(pip install 'redis>=5' in the app's virtual environment)."
    ]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: object())
    assert configuration_problems(shared) == []


def test_web_workers_come_from_the_environment_as_a_number(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pro_app.checks import configured_app

    monkeypatch.delenv("PRO_WEB_WORKERS", raising=False)
    assert configured_app().config["WEB_WORKERS"] == 1
    monkeypatch.setenv("PRO_WEB_WORKERS", "3")
    assert configured_app().config["WEB_WORKERS"] == 3


def test_start_up_and_pro_app_check_refuse_the_same_configuration(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from pro_app import cli

    database = f"sqlite:///{tmp_path / 'p.sqlite3'}"
    settings = {
        "PRO_ENV": "production",
        "PRO_SECRET_KEY": TEST_SECRET_KEY,
        "PRO_BASE_URL": "https://pro.example.test",
        "PRO_MAIL_SENDER": "questionari@pro.example.test",
        "PRO_SQLALCHEMY_DATABASE_URI": database,
        "PRO_WEB_WORKERS": "2",
        "PRO_MAIL_BACKEND": "file",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    expected = [
        "SQLite with several web workers (PRO_WEB_WORKERS=2)",
        "PRO_MAIL_BACKEND=file delivers no e-mail",
        "PRO_RATELIMIT_STORAGE_URI=memory:// with several web workers",
    ]
    checked = CliRunner().invoke(cli.check)
    assert checked.exit_code == 1
    with pytest.raises(ConfigurationError) as refused:
        create_app()
    for sentence in expected:
        assert f"configuration: {sentence}" in checked.output
        assert sentence in str(refused.value)
