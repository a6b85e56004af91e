"""Response headers on every page, trusted hosts and proxies, unreadable input, private logs."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, abort, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.middleware.proxy_fix import ProxyFix

from pro_app.errors import render_error
from pro_app.i18n import _l

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HSTS_MAX_AGE = 63072000  # two years: the usual preload-ready value
# Development servers are reached by these names as well as by BASE_URL's.
DEVELOPMENT_HOSTS = ("localhost", "127.0.0.1")
PROXY_FIX_ARGUMENTS = ("x_for", "x_proto", "x_host", "x_port", "x_prefix")

# NUL and other control characters (tab and line breaks aside), lone surrogates and the bidi
# controls that make text read differently from what it holds: no form needs them, PostgreSQL
# refuses NUL in text, and a surrogate cannot even be encoded for the database.
UNREADABLE = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]"
)
UNREADABLE_INPUT = _l(
    "What was sent contains invisible control characters that cannot be accepted. "
    "Please type the text again and retry."
)
# Integer columns are 32-bit on PostgreSQL: a larger id in a path cannot name anything.
LARGEST_ID = 2**31 - 1
MAX_JSON_DEPTH = 20

# A patient's path carries the link token; access logs must show it without the token.
LINK_TOKEN_IN_PATH = re.compile(r"/p/[^\s/?#\"']+")
ACCESS_LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error")


class LinkTokenFilter(logging.Filter):
    """Replace the token of any /p/<token> path in a log record with a placeholder."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = LINK_TOKEN_IN_PATH.sub("/p/[token]", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


class NoRowsFilter(logging.Filter):
    """Drop SQLAlchemy's DEBUG records: at that level it logs every row it reads."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.INFO


LINK_TOKEN_FILTER = LinkTokenFilter()
NO_ROWS_FILTER = NoRowsFilter()
# Rows hold names, addresses and answers; statements (INFO) are kept, their values are hidden
# by the engine's hide_parameters.
SQL_LOGGER = "sqlalchemy.engine.Engine"


def init_app(app: Flask) -> None:
    """Proxy headers, trusted hosts, the input check and the header step, on every request."""
    _trust_proxy(app)
    if app.config.get("TRUSTED_HOSTS") is None:
        app.config["TRUSTED_HOSTS"] = default_trusted_hosts(app.config)
    for name in ACCESS_LOGGERS:
        logging.getLogger(name).addFilter(LINK_TOKEN_FILTER)  # the same filter is added once
    logging.getLogger(SQL_LOGGER).addFilter(NO_ROWS_FILTER)
    app.before_request(refuse_unreadable_input)
    app.after_request(add_security_headers)


def default_trusted_hosts(config: Mapping[str, Any]) -> list[str] | None:
    """BASE_URL's host (plus localhost in development); None (any host) without a BASE_URL."""
    host = urlsplit(str(config.get("BASE_URL") or "")).hostname
    if not host:
        return None
    extra = DEVELOPMENT_HOSTS if config.get("ENV") == "development" else ()
    return list(dict.fromkeys((host, *extra)))


def _trust_proxy(app: Flask) -> None:
    # Behind a reverse proxy the client's address, scheme and host arrive in X-Forwarded-*
    # headers; they are believed only for as many proxies as the settings say.
    counts = {
        name: int(app.config.get(f"PROXY_FIX_{name.upper()}") or 0) for name in PROXY_FIX_ARGUMENTS
    }
    if any(counts.values()):
        app.wsgi_app = ProxyFix(app.wsgi_app, **counts)  # type: ignore[method-assign]


def refuse_unreadable_input() -> ResponseReturnValue | None:
    """400 for control characters or surrogates anywhere in the path, query, form or JSON."""
    view_args = request.view_args or {}
    if any(isinstance(value, int) and abs(value) > LARGEST_ID for value in view_args.values()):
        abort(404)
    if not any(UNREADABLE.search(text) for text in _request_texts(view_args)):
        return None
    if request.is_json:
        return jsonify(status="invalid", message=str(UNREADABLE_INPUT)), 400
    if request.blueprint == "api":
        abort(400)  # the API answers in JSON through its own error handler
    return render_error(400, UNREADABLE_INPUT)


def _request_texts(view_args: Mapping[str, Any]) -> Iterator[str]:
    yield from (value for value in view_args.values() if isinstance(value, str))
    # A GET has no form to parse (its body is never read).
    sources = (request.args,) if request.method in ("GET", "HEAD") else (request.args, request.form)
    for source in sources:
        for name, value in source.items(multi=True):
            yield name
            yield value
    if request.is_json:
        yield from _json_texts(request.get_json(silent=True), 0)


def _json_texts(value: object, depth: int) -> Iterator[str]:
    if depth > MAX_JSON_DEPTH:
        yield "\x00"  # nesting no endpoint reads: refused like unreadable text
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _json_texts(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _json_texts(item, depth + 1)


STRICT_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
    ("Strict-Transport-Security", f"max-age={HSTS_MAX_AGE}"),
)


def add_security_headers(response: Response) -> Response:
    """Strict headers (unless the view set its own); pages with personal data are never cached."""
    headers = response.headers
    # One pass over the few headers already set, rather than a scan per header added.
    present = {name.lower() for name in headers.keys()}  # noqa: SIM118 (Headers iterates pairs)
    headers.extend(
        (name, value)
        for name, value in STRICT_HEADERS
        if name.lower() not in present
        and (request.is_secure or name != "Strict-Transport-Security")
    )
    if not request.path.startswith("/static/"):
        headers["Cache-Control"] = "no-store"
    return response
