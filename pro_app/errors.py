"""Error pages in the user's language; never a bare stack trace."""

from __future__ import annotations

import contextlib
import logging
import re
import traceback

from flask import Flask, g, jsonify, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import LazyString, refresh
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException, InternalServerError, SecurityError

from pro_app.extensions import db, login_manager
from pro_app.i18n import PATIENT_LANGUAGE_SESSION_KEY, _l

log = logging.getLogger(__name__)

ERROR_TEXTS: dict[int, tuple[LazyString, LazyString]] = {
    400: (
        _l("Bad request"),
        _l("The request could not be understood. Please go back and try again."),
    ),
    403: (_l("Access denied"), _l("You do not have permission to see this page.")),
    404: (_l("Page not found"), _l("The page you are looking for does not exist or has moved.")),
    405: (_l("Operation not allowed"), _l("This operation is not available from here.")),
    410: (
        _l("Page no longer available"),
        _l("This page is no longer available. If you need help, please contact your hospital."),
    ),
    413: (_l("Too much data"), _l("The data sent is too large to be accepted.")),
    429: (
        _l("Too many attempts"),
        _l("Too many requests arrived in a short time. Please wait a few minutes and try again."),
    ),
    500: (
        _l("Something went wrong"),
        _l("Something did not work on our side. Please try again shortly."),
    ),
    503: (
        _l("Service temporarily unavailable"),
        _l("The service is temporarily unavailable. Please try again in a few minutes."),
    ),
}

UNTRUSTED_HOST = _l("This address is not served here.")
CSRF_FAILED = _l("The form has expired or is not valid. Please reload the page and try again.")

# The database cannot be reached (server down, network cut, file gone, pool exhausted, SQLite
# still locked after its busy timeout): a passing condition, answered with 503 and "try again".
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError)
RETRY_AFTER_SECONDS = 30
ANSWERS_KEPT = _l(
    "We could not save your answers just now, but they are kept on this page. "
    "Please wait a minute, then press “Try again”."
)
PATIENT_TRY_AGAIN = _l(
    "The questionnaire cannot be opened just now. Nothing is lost: please try again in a few "
    "minutes."
)
STAFF_NOT_SAVED = _l(
    "The database cannot be reached just now, so nothing was saved. Go back in your browser "
    "(what you entered is usually still there) and send it again in a few minutes."
)
# What a patient's post may carry back on the "try again" page: item answers and the page's own
# hidden fields. Nothing else is echoed, and nothing long.
KEPT_FIELD = re.compile(r"(?:[a-z][a-z0-9_]{0,39}-\d{1,3}|csrf_token|form_key|confirm_blanks)\Z")
MAX_KEPT_FIELDS = 200
MAX_KEPT_LENGTH = 400


def init_app(app: Flask) -> None:
    """Render HTTP errors, CSRF failures and unexpected exceptions as friendly pages."""
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(HTTPException, handle_http_error)
    for error_class in DATABASE_UNAVAILABLE:
        app.register_error_handler(error_class, handle_database_unavailable)
    app.register_error_handler(Exception, handle_unexpected_error)


def render_error(code: int, message: str | LazyString | None = None) -> tuple[str, int]:
    """The error page for this status code, with an optional more precise message."""
    title, default_message = ERROR_TEXTS.get(code, ERROR_TEXTS[500])
    # Lazy strings count as safe HTML for Jinja: make them plain text so they are escaped.
    return (
        render_template(
            "errors/error.html",
            code=code,
            title=str(title),
            message=str(message or default_message),
        ),
        code,
    )


def handle_http_error(error: HTTPException) -> ResponseReturnValue:
    if error.code is None or error.code < 400:
        return error
    if isinstance(error, SecurityError):
        # A Host outside TRUSTED_HOSTS: no URL can be built for it, so no page either.
        return str(UNTRUSTED_HOST), 400, {"Content-Type": "text/plain; charset=utf-8"}
    return render_error(error.code)


def handle_csrf_error(_error: CSRFError) -> tuple[str, int]:
    return render_error(400, CSRF_FAILED)


def handle_database_unavailable(error: Exception) -> ResponseReturnValue:
    """503 "try again": a patient's posted answers come back in a form that posts them again."""
    # The endpoint, never the path: a patient's path carries the link token.
    log.warning("database unavailable (%s) at %s", type(error).__name__, request.endpoint)
    rollback_quietly()
    if "_login_user" not in g:
        # Flask-Login's template context would otherwise ask the database for the staff user.
        g._login_user = login_manager.anonymous_user()
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if request.is_json or request.accept_mimetypes.best == "application/json":
        # The page's script keeps the answer in its queue and sends it again (patient.js).
        return jsonify(status="unavailable"), 503, headers
    is_patient = request.blueprint == "patient"
    if is_patient:
        _speak_patient_language()
    kept = _kept_fields() if is_patient and request.method == "POST" else []
    if kept:
        message = ANSWERS_KEPT
    elif is_patient:
        message = PATIENT_TRY_AGAIN
    elif request.method == "POST":
        message = STAFF_NOT_SAVED
    else:
        message = ERROR_TEXTS[503][1]
    html = render_template(
        "errors/unavailable.html",
        title=str(ERROR_TEXTS[503][0]),
        message=str(message),
        kept=kept,
        action=_posted_action() if kept else None,
        retry_url=_retry_url(is_patient),
    )
    return html, 503, headers


def handle_unexpected_error(error: Exception) -> ResponseReturnValue:
    if isinstance(error, HTTPException):
        return handle_http_error(error)
    log_unexpected(error, "unexpected error")
    rollback_quietly()
    return render_error(InternalServerError.code)


def log_unexpected(error: BaseException, what: str) -> None:
    """Log where an error happened (types, files, lines) but no exception message.

    Messages quote values (an address that failed validation, a database row), so a
    traceback with them would carry personal data into the logs.
    """
    log.error("%s %s\n%s", what, type(error).__name__, _stack_without_messages(error))


def _stack_without_messages(error: BaseException) -> str:
    lines: list[str] = []
    current: BaseException | None = error
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        kind = type(current)
        lines.append(f"{kind.__module__}.{kind.__qualname__} (message not logged)")
        for frame in traceback.extract_tb(current.__traceback__):
            lines.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}')
        current = current.__cause__ or current.__context__
    return "\n".join(lines)


def rollback_quietly() -> None:
    """Roll the session back; a connection already gone is left for teardown to discard."""
    with contextlib.suppress(SQLAlchemyError):
        db.session.rollback()


def _speak_patient_language() -> None:
    """Use the patient's language, remembered in the session since the database is out of reach."""
    language = session.get(PATIENT_LANGUAGE_SESSION_KEY)
    if "patient_locale" not in g and isinstance(language, str):
        g.patient_locale = language
        refresh()  # forget a locale worked out before the patient's was known


def _kept_fields() -> list[tuple[str, str]]:
    try:
        items = list(request.form.items(multi=True))
    except HTTPException:
        return []  # the post itself is unreadable (too large): nothing to keep
    kept = [
        (name, value)
        for name, value in items
        if KEPT_FIELD.match(name) and len(value) <= MAX_KEPT_LENGTH and "\x00" not in value
    ]
    has_answers = any(name not in ("csrf_token", "form_key", "confirm_blanks") for name, _ in kept)
    has_key = any(name == "form_key" for name, _ in kept)
    return kept[:MAX_KEPT_FIELDS] if has_answers or has_key else []


def _retry_url(is_patient: bool) -> str | None:
    """Where "try again" leads when nothing is posted again: the same page, or the questionnaire."""
    if request.method in ("GET", "HEAD"):
        return request.full_path if request.query_string else request.path
    if not is_patient:
        return None  # staff go back in the browser, where the form still holds what they typed
    return request.path if request.endpoint == "patient.start" else url_for("patient.questionnaire")


def _posted_action() -> str | None:
    action = request.form.get("action")
    return action if action in ("start", "next", "back", "save", "submit") else None
