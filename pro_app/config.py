"""Configuration: defaults, then PRO_* environment variables, then an explicit mapping (tests)."""

from __future__ import annotations

import importlib.util
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

ENVIRONMENTS = ("development", "production")
UNSAFE_SECRET_KEYS = {"", "dev", "change-me", "changeme", "secret"}
MIN_SECRET_KEY_LENGTH = 32
# Message backends (e-mail and SMS alike) that deliver nothing: development writes files or
# prints, tests keep the messages in memory. In production a patient would never receive an
# invitation, and console would print each link to the journal; a trial without SMS says
# SMS_BACKEND=off (the default).
DEVELOPMENT_BACKENDS = ("console", "file")
TEST_BACKEND = "memory"
# Flask-Limiter (the limits package) needs the redis package for these storages.
REDIS_STORAGE_SCHEMES = ("redis", "rediss", "redis+unix", "redis+cluster", "redis+sentinel")


class ConfigurationError(RuntimeError):
    """The configuration is unsafe or incomplete; start-up must stop."""


def default_config(instance_path: Path) -> dict[str, Any]:
    """Settings that apply when nothing else is said."""
    return {
        "ENV": "production",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance_path / 'pro_app.sqlite3'}",
        # hide_parameters: SQL logging and database errors never show the values (answers,
        # addresses) bound to a statement.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "hide_parameters": True},
        "SECRET_KEY": None,
        # Derives patient link tokens; defaults to SECRET_KEY. Changing it re-issues every link.
        "LINK_SECRET": None,
        "BASE_URL": None,
        "TIMEZONE": "Europe/Rome",
        "QUESTIONNAIRE_DIR": str(PROJECT_ROOT / "questionnaires"),
        "TEXT_PACK_DIR": None,
        "BABEL_DEFAULT_LOCALE": "it",
        "BABEL_DEFAULT_TIMEZONE": "Europe/Rome",
        "BABEL_TRANSLATION_DIRECTORIES": str(PROJECT_ROOT / "translations"),
        "SUPPORTED_LOCALES": ("it", "en"),
        "CLI_LOCALE": "en",
        "MAIL_BACKEND": "smtp",
        "MAIL_SERVER": "localhost",
        "MAIL_PORT": 25,
        "MAIL_USE_TLS": False,
        "MAIL_USE_SSL": False,
        "MAIL_USERNAME": None,
        "MAIL_PASSWORD": None,
        "MAIL_TIMEOUT": 15,
        "MAIL_SENDER": None,
        "MAIL_FILE_DIR": str(instance_path / "outbox"),
        "SMS_BACKEND": "off",  # http for a gateway; development uses file
        "SMS_GATEWAY_URL": None,
        "SMS_GATEWAY_KEY": None,
        "SMS_SENDER": None,
        "SMS_TIMEOUT": 15,
        "SMS_FILE_DIR": str(instance_path / "outbox"),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # A cookie is sent again only when the session changed (the patient's "last seen" mark
        # moves at most once a minute), not on every response.
        "SESSION_REFRESH_EACH_REQUEST": False,
        "SESSION_COOKIE_SECURE": True,
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "WTF_CSRF_TIME_LIMIT": None,
        "DETERIORATION_THRESHOLD": 10,
        # Staff sign-in
        "STAFF_IDLE_MINUTES": 30,
        "STAFF_SESSION_HOURS": 12,  # absolute lifetime of a staff session
        "STAFF_MAX_FAILED_LOGINS": 5,
        "STAFF_LOCKOUT_MINUTES": 15,
        "STAFF_SIGN_IN_RATE_LIMIT": "10 per minute; 100 per hour",
        # Patient pages
        "PATIENT_ITEMS_PER_PAGE": 5,  # 1 = one question per screen
        "PATIENT_IDLE_MINUTES": 120,  # a patient session unused this long must start again
        "PATIENT_SUBMIT_GRACE_MINUTES": 60,  # a page posted just after closing still counts
        "PATIENT_SECOND_FACTOR": False,  # ask the year of birth before showing any question
        "PATIENT_FORM_KEY_DAYS": 7,  # how long a rendered page can restore an expired session
        "PATIENT_LINK_RATE_LIMIT": "20 per minute; 200 per day",
        "API_RATE_LIMIT": "120 per minute",  # per API token (per address without one)
        "SCHEDULER_INTERVAL_SECONDS": 60,  # how often the dispatcher pass runs
        "SCHEDULER_LEASE_SECONDS": 180,  # a scheduler that died blocks no other for longer
        "OUTBOX_CLAIM_SECONDS": 600,  # a message claimed by a pass that died is retried after
        "RATELIMIT_STORAGE_URI": "memory://",  # set to redis://... with several web workers
        "RATELIMIT_HEADERS_ENABLED": True,
        # Said for every app: the one limiter object otherwise keeps the previous app's choice.
        "RATELIMIT_ENABLED": True,
        # Requests for any other host are refused (400); None = BASE_URL's host (and, in
        # development, localhost and 127.0.0.1). Set a list to add names, e.g. a monitor's.
        "TRUSTED_HOSTS": None,
        # Behind a reverse proxy: how many proxies' X-Forwarded-For/-Proto/-Host/-Port/-Prefix
        # headers to believe (0 = none; 1 for one nginx in front). Proto makes HSTS and secure
        # cookies see https; For gives the rate limits the client's address.
        "PROXY_FIX_X_FOR": 0,
        "PROXY_FIX_X_PROTO": 0,
        "PROXY_FIX_X_HOST": 0,
        "PROXY_FIX_X_PORT": 0,
        "PROXY_FIX_X_PREFIX": 0,
        # gunicorn worker processes (deploy/gunicorn.conf.py reads the same PRO_WEB_WORKERS):
        # `pro-app check` needs the number to refuse SQLite and per-process rate limits.
        "WEB_WORKERS": 1,
        # json (one object a line, for journald) or text; None = json in production, text in
        # development (pro_app/logs.py).
        "LOG_FORMAT": None,
    }


def load_config(app: Flask, overrides: Mapping[str, Any] | None) -> None:
    """Fill app.config from defaults, PRO_* variables and the overrides, in that order."""
    app.config.from_mapping(default_config(Path(app.instance_path)))
    app.config.from_prefixed_env("PRO")
    if overrides:
        app.config.from_mapping(overrides)
    if app.config["ENV"] == "development":
        _apply_development_defaults(app, overrides or {})


def _apply_development_defaults(app: Flask, overrides: Mapping[str, Any]) -> None:
    # Development runs over plain http on localhost with a key kept in instance/ so that
    # sessions survive restarts; production must be told all of this explicitly.
    app.config["SESSION_COOKIE_SECURE"] = False
    # Messages go to files under instance/outbox, listed on the demo's "sent messages" page.
    for key in ("MAIL_BACKEND", "SMS_BACKEND"):
        if os.environ.get(f"PRO_{key}") is None and key not in overrides:
            app.config[key] = "file"
    app.config["MAIL_SENDER"] = app.config["MAIL_SENDER"] or "questionari@localhost"
    if not app.config["BASE_URL"]:
        app.config["BASE_URL"] = "http://127.0.0.1:5000"
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _instance_secret_key(Path(app.instance_path))


def _instance_secret_key(instance_path: Path) -> str:
    key_file = instance_path / "secret_key"
    if key_file.exists():
        return key_file.read_text(encoding="utf-8").strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    key_file.write_text(key, encoding="utf-8")
    key_file.chmod(0o600)
    return key


def configuration_problems(config: Mapping[str, Any]) -> list[str]:
    """Everything that makes this configuration unsafe or unusable, as readable sentences."""
    problems: list[str] = []
    env = config.get("ENV")
    if env not in ENVIRONMENTS:
        problems.append(f"PRO_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}.")
    if env != "production":
        return problems
    secret = config.get("SECRET_KEY") or ""
    if secret in UNSAFE_SECRET_KEYS or len(str(secret)) < MIN_SECRET_KEY_LENGTH:
        problems.append(
            f"PRO_SECRET_KEY must be set to a random value of at least {MIN_SECRET_KEY_LENGTH} "
            "characters (for example: python3 -c 'import secrets; print(secrets.token_hex(32))')."
        )
    link_secret = config.get("LINK_SECRET")
    # Unset, links derive from SECRET_KEY; set, it must be as strong (tokens are HMACs of it).
    if link_secret is not None and (
        link_secret in UNSAFE_SECRET_KEYS or len(str(link_secret)) < MIN_SECRET_KEY_LENGTH
    ):
        problems.append(
            f"PRO_LINK_SECRET, when set, must be a random value of at least "
            f"{MIN_SECRET_KEY_LENGTH} characters, like PRO_SECRET_KEY."
        )
    if config.get("DEBUG"):
        problems.append("Debug mode must be off in production (unset PRO_DEBUG / FLASK_DEBUG).")
    base_url = config.get("BASE_URL") or ""
    if not base_url:
        problems.append(
            "PRO_BASE_URL must be set to the public https address of the app "
            "(links in messages are built from it)."
        )
    elif not str(base_url).startswith("https://"):
        problems.append("PRO_BASE_URL must start with https:// in production.")
    if config.get("MAIL_BACKEND") == "smtp" and not config.get("MAIL_SENDER"):
        problems.append("PRO_MAIL_SENDER must be set (the From address of patient messages).")
    if not config.get("SESSION_COOKIE_SECURE"):
        problems.append("Session cookies must be marked Secure in production.")
    workers, worker_problems = _web_workers(config)
    problems += worker_problems
    problems += _database_problems(config, workers)
    problems += _messaging_problems(config)
    problems += _rate_limit_problems(config, workers)
    return problems


def _web_workers(config: Mapping[str, Any]) -> tuple[int, list[str]]:
    value = config.get("WEB_WORKERS", 1)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value, []
    return 1, [f"PRO_WEB_WORKERS must be a whole number of at least 1, not {value!r}."]


def _database_problems(config: Mapping[str, Any], workers: int) -> list[str]:
    try:
        url = make_url(str(config.get("SQLALCHEMY_DATABASE_URI") or ""))
    except ArgumentError:
        return ["PRO_SQLALCHEMY_DATABASE_URI is not a database URL."]
    if url.get_backend_name() != "sqlite":
        return []
    if url.database in (None, "", ":memory:") or url.query.get("mode") == "memory":
        return [
            "PRO_SQLALCHEMY_DATABASE_URI is an in-memory SQLite database: every answer would "
            "be lost when the app stops. Use PostgreSQL (postgresql+psycopg://...)."
        ]
    if workers > 1:
        return [
            f"SQLite with several web workers (PRO_WEB_WORKERS={workers}): use PostgreSQL "
            "(postgresql+psycopg://...) or PRO_WEB_WORKERS=1."
        ]
    return []


def _messaging_problems(config: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    # The memory backends are the test suite's: tests may build production apps with them.
    refused_test_backend = () if config.get("TESTING") else (TEST_BACKEND,)
    mail = str(config.get("MAIL_BACKEND") or "").strip().lower()
    if mail in (*DEVELOPMENT_BACKENDS, *refused_test_backend):
        problems.append(
            f"PRO_MAIL_BACKEND={mail} delivers no e-mail (it is for development and tests): "
            "use smtp in production."
        )
    sms = str(config.get("SMS_BACKEND") or "").strip().lower()
    if sms in (*DEVELOPMENT_BACKENDS, *refused_test_backend):
        problems.append(
            f"PRO_SMS_BACKEND={sms} delivers no SMS (it is for development and tests): "
            "use http (an SMS gateway) in production, or off for a trial without SMS."
        )
    return problems


def _rate_limit_problems(config: Mapping[str, Any], workers: int) -> list[str]:
    storage = str(config.get("RATELIMIT_STORAGE_URI") or "")
    scheme = storage.partition("://")[0].lower()
    if scheme == "memory" and workers > 1:
        return [
            f"PRO_RATELIMIT_STORAGE_URI=memory:// with several web workers "
            f"(PRO_WEB_WORKERS={workers}) gives each worker its own counters, so every limit is "
            "multiplied by the number of workers: use redis://HOST:6379/DB (needs the Python "
            "package redis) or PRO_WEB_WORKERS=1."
        ]
    if scheme in REDIS_STORAGE_SCHEMES and importlib.util.find_spec("redis") is None:
        return [
            f"PRO_RATELIMIT_STORAGE_URI uses {scheme}:// but the Python package redis is not "
            "installed (pip install 'redis>=5' in the app's virtual environment)."
        ]
    return []


def check_configuration(app: Flask) -> None:
    """Stop start-up with a clear message when the configuration is unsafe."""
    problems = configuration_problems(app.config)
    if problems:
        raise ConfigurationError(
            "The configuration is not safe to start with:\n- " + "\n- ".join(problems)
        )
