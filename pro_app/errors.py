"""Error pages in the user's language; never a bare stack trace."""

from __future__ import annotations

import logging

from flask import Flask, render_template
from flask_babel import LazyString
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from pro_app.extensions import db
from pro_app.i18n import _l

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

CSRF_FAILED = _l("The form has expired or is not valid. Please reload the page and try again.")


def init_app(app: Flask) -> None:
    """Render HTTP errors, CSRF failures and unexpected exceptions as friendly pages."""
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(HTTPException, handle_http_error)
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


def handle_http_error(error: HTTPException) -> tuple[str, int] | HTTPException:
    if error.code is None or error.code < 400:
        return error
    return render_error(error.code)


def handle_csrf_error(_error: CSRFError) -> tuple[str, int]:
    return render_error(400, CSRF_FAILED)


def handle_unexpected_error(error: Exception) -> tuple[str, int]:
    if isinstance(error, HTTPException):
        return handle_http_error(error)  # type: ignore[return-value]
    # Log the type and place only: the message may carry personal data.
    log.error("unexpected error %s", type(error).__name__, exc_info=error)
    db.session.rollback()
    return render_error(InternalServerError.code)
