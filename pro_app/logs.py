"""Structured logs: one JSON object per line on stderr, and one line per request.

Every line has `time` (ISO 8601, UTC), `level`, `logger`, `event`, `message`, then the record's
own fields at the top level. Give a record an event name and fields with `event()`:

    log.info("message sent", extra=logs.event("message.sent", message_id=12, channel="sms"))

A record logged without `event()` has the event "log". A field named like one of the fixed keys
is written as `field_<name>`. LOG_FORMAT chooses "json" (one object a line, for production) or
"text" (a readable line with the fields as key=value, for development).

The request line (logger "pro_app.request", event "request") has method, endpoint, status,
duration_ms (until the response is ready; a streamed download's body follows it), request_id
(also sent back in X-Request-ID) and the staff role if a staff member is signed in.

Exceptions are logged by type and place only, never by message: messages quote values (an
address that failed validation, a row), which must not reach the logs. The request line names the
Flask endpoint, never the path (a patient's path holds the link token).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time
import traceback
from typing import Any

from flask import Flask, Response, g, request
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import SQLAlchemyError

from pro_app.config import ConfigurationError

LOG_FORMATS = ("json", "text")
HANDLER_NAME = "pro_app.stderr"
REQUEST_ID_HEADER = "X-Request-ID"
# An id from a proxy or a client is kept only if it is plainly an id: nothing to inject.
INCOMING_REQUEST_ID = re.compile(r"[A-Za-z0-9-]{8,64}")
FIXED_KEYS = frozenset({"time", "level", "logger", "event", "message"})

request_log = logging.getLogger("pro_app.request")


def event(name: str, **fields: Any) -> dict[str, Any]:
    """The `extra` of a structured record: its event name and its fields."""
    return {"event": name, "fields": fields}


def exception_places(error: BaseException | None) -> list[str]:
    """Type and code places of an exception and its causes; never the messages."""
    places: list[str] = []
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        kind = type(error)
        places.append(f"{kind.__module__}.{kind.__qualname__} (message not logged)")
        places += [
            f"{frame.filename}:{frame.lineno} in {frame.name}"
            for frame in traceback.extract_tb(error.__traceback__)
        ]
        error = error.__cause__ or error.__context__
    return places


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        created = record.created
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
            + f".{int(created * 1000) % 1000:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "event": getattr(record, "event", None) or "log",
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            for key, value in fields.items():
                entry[f"field_{key}" if key in FIXED_KEYS else key] = value
        if record.exc_info:
            entry["exception"] = exception_places(record.exc_info[1])
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """A readable line: time, level, logger, message, then the fields as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        # Not logging.Formatter.format: it would reuse (or cache) a traceback with messages.
        record.message = record.getMessage()
        record.asctime = self.formatTime(record, self.datefmt)
        text = self.formatMessage(record)
        fields = getattr(record, "fields", None)
        if fields:
            text += " " + " ".join(f"{key}={value}" for key, value in fields.items())
        if record.exc_info:
            text += "\n  " + "\n  ".join(exception_places(record.exc_info[1]))
        if record.stack_info:
            text += "\n" + self.formatStack(record.stack_info)
        return text


def formatter_for(log_format: str) -> logging.Formatter:
    """The formatter LOG_FORMAT names."""
    return JsonFormatter() if log_format == "json" else TextFormatter()


def log_format(app: Flask) -> str:
    """LOG_FORMAT, or json in production and text in development when it is not set."""
    value = app.config.get("LOG_FORMAT")
    if not value:
        return "text" if app.config.get("ENV") == "development" else "json"
    chosen = str(value).strip().lower()
    if chosen not in LOG_FORMATS:
        raise ConfigurationError(f"LOG_FORMAT must be json or text, not {value!r}")
    return chosen


def process_handler(log_format: str) -> logging.Handler:
    """The process's one stderr handler (made at the first call), set to this format."""
    for logger in (logging.getLogger("pro_app"), logging.getLogger()):
        for handler in logger.handlers:
            if handler.name == HANDLER_NAME:
                handler.setFormatter(formatter_for(log_format))
                return handler
    # Bound to the stderr of the moment: a command's output captured later (Click's test
    # runner) is not mixed with log lines.
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(formatter_for(log_format))
    return handler


def init_app(app: Flask) -> None:
    """The "pro_app" loggers write to stderr (once per process); every request is logged."""
    handler = process_handler(log_format(app))
    package_logger = logging.getLogger("pro_app")
    if handler not in logging.getLogger().handlers and handler not in package_logger.handlers:
        package_logger.addHandler(handler)
    if package_logger.level == logging.NOTSET:
        package_logger.setLevel(logging.INFO)
    # First of the before-request steps, so that the time and the id cover all of them (and a
    # request they refuse is logged too).
    app.before_request_funcs.setdefault(None, []).insert(0, start_request)
    app.after_request(log_response)
    app.teardown_request(log_unfinished_request)


def log_everything_to_stderr(app: Flask) -> None:
    """Long-running commands: every logger (APScheduler, Werkzeug) through the same handler."""
    handler = process_handler(log_format(app))
    logging.getLogger("pro_app").removeHandler(handler)  # its records reach the root's
    root = logging.getLogger()
    if handler not in root.handlers:
        root.addHandler(handler)
    root.setLevel(logging.INFO)


def start_request() -> None:
    """Note when the request began and its id (a proxy's X-Request-ID if it looks like one)."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = incoming if INCOMING_REQUEST_ID.fullmatch(incoming) else secrets.token_hex(8)
    g.request_started = time.perf_counter()


def log_response(response: Response) -> Response:
    """The request line, and the id in the response's X-Request-ID."""
    started = g.pop("request_started", None)
    request_id = g.get("request_id") or secrets.token_hex(8)
    response.headers[REQUEST_ID_HEADER] = request_id
    _write_request_line(response.status_code, started, request_id, may_query=True)
    return response


def log_unfinished_request(error: BaseException | None) -> None:
    """A request whose exception escaped every handler (testing propagates them) is a 500."""
    started = g.pop("request_started", None)
    if started is not None:
        _write_request_line(500, started, g.get("request_id") or "", may_query=False)


def _write_request_line(
    status: int, started: float | None, request_id: str, *, may_query: bool
) -> None:
    if not request_log.isEnabledFor(logging.INFO):
        return
    duration_ms = None if started is None else round((time.perf_counter() - started) * 1000, 1)
    fields = {
        "method": request.method,
        "endpoint": request.endpoint,
        "status": status,
        "duration_ms": duration_ms,
        "request_id": request_id,
        "role": _staff_role(may_query),
    }
    # makeRecord + handle is what .info() does, without looking up the caller's file and line
    # in the stack (the same place every time): a third of the cost on every request.
    record = request_log.makeRecord(
        request_log.name,
        logging.INFO,
        __file__,
        0,
        "request",
        (),
        None,
        extra={"event": "request", "fields": fields},
    )
    request_log.handle(record)


def _staff_role(may_query: bool) -> str | None:
    """The signed-in staff member's role, if this request already loaded the user."""
    user = g.get("_login_user")  # Flask-Login's cache: never load a user just to log it
    if user is None or not user.is_authenticated:
        return None
    state = sa_inspect(user, raiseerr=False)
    if state is None:
        return None
    role = state.dict.get("role")
    if role is None and may_query and not state.detached:
        # A commit expired the user: one read by primary key (staff pages only, never patients').
        try:
            role = user.role
        except SQLAlchemyError:
            return None  # the database went away during the request: the line still goes out
    return None if role is None else str(role)


# Delivery failures are logged as a category, never as the reason's text: the reason is written
# to hold no address, but a provider's wording is not ours to trust.
_NUMBERED_FAILURES = (
    (re.compile(r"\bSMTP (\d{3})\b"), "smtp_"),
    (re.compile(r"\(HTTP (\d{3})\)"), "http_"),
)
_WORDED_FAILURES = (
    ("timeout", "timeout"),
    ("connection refused", "connection_refused"),
    ("tls", "tls"),
    ("e.164", "invalid_number"),
    ("number is not valid", "invalid_number"),
    ("not built", "invalid_message"),
    ("contact on file", "no_contact"),
    ("not writable", "outbox_folder"),
    ("disconnected", "connection"),
    ("unreachable", "connection"),
    ("connection error", "connection"),
    ("extension", "smtp_extension"),
)


def failure_category(reason: str) -> str:
    """A short code for a delivery failure ("smtp_550", "timeout", "no_contact", "other")."""
    for pattern, prefix in _NUMBERED_FAILURES:
        match = pattern.search(reason)
        if match:
            return prefix + match.group(1)
    lowered = reason.lower()
    for words, category in _WORDED_FAILURES:
        if words in lowered:
            return category
    return "other"
