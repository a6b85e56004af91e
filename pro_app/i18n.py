"""Languages and time zones: who sees which locale, and the lazy gettext for import-time labels."""

from __future__ import annotations

from functools import cache

from babel import Locale
from flask import Flask, current_app, g, has_request_context, request, session
from flask_babel import get_locale, lazy_gettext

from pro_app.extensions import babel

_l = lazy_gettext

LOCALE_SESSION_KEY = "locale"
# The patient's own language, kept in the session for pages shown when the database is out of reach.
PATIENT_LANGUAGE_SESSION_KEY = "patient_language"


def supported_locales() -> tuple[str, ...]:
    """The locales this deployment offers, default first."""
    return tuple(current_app.config["SUPPORTED_LOCALES"])


def select_locale() -> str:
    """A choice made on the page, the patient's language, staff preference, browser, Italian."""
    if not has_request_context():
        # Command-line output and background jobs: messages choose their language explicitly
        # with force_locale(); everything else speaks the operators' language.
        return str(current_app.config["CLI_LOCALE"])
    locales = supported_locales()
    candidates = (
        session.get(LOCALE_SESSION_KEY),
        g.get("patient_locale"),
        g.get("staff_locale"),
    )
    for candidate in candidates:
        if candidate in locales:
            return str(candidate)
    browser = request.accept_languages.best_match(locales)
    return browser or current_app.config["BABEL_DEFAULT_LOCALE"]


@cache
def parsed_locale(code: str) -> Locale:
    """The Babel locale of a code, parsed once per process (parsing looks at files each time)."""
    return Locale.parse(code)


def _request_locale() -> Locale:
    return parsed_locale(select_locale())


def select_timezone() -> str:
    """The patient's time zone when a patient is being served, otherwise the trial's."""
    return str(g.get("patient_timezone") or current_app.config["TIMEZONE"])


# Each language is offered in its own name, whatever the page's language.
LANGUAGE_NAMES = {"it": "Italiano", "en": "English"}


def init_app(app: Flask) -> None:
    """Bind Flask-Babel with our selectors and give templates the language helpers."""
    babel.init_app(app, locale_selector=_request_locale, timezone_selector=select_timezone)
    app.context_processor(_template_helpers)


def _template_helpers() -> dict[str, object]:
    return {
        "current_locale": lambda: str(get_locale() or current_app.config["BABEL_DEFAULT_LOCALE"]),
        "language_choices": lambda: [
            (code, LANGUAGE_NAMES.get(code, code)) for code in supported_locales()
        ],
    }
