"""API routes: the list of exports and one export as streamed JSON; errors are JSON too."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from dataclasses import asdict
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, current_app, g, request, stream_with_context, url_for
from flask.typing import ResponseReturnValue
from flask_babel import LazyString, force_locale
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import HTTPException

from pro_app.api import bp
from pro_app.errors import (
    DATABASE_UNAVAILABLE,
    RETRY_AFTER_SECONDS,
    log_unexpected,
    rollback_quietly,
)
from pro_app.exports.registry import KINDS, build_dataset
from pro_app.exports.requests import (
    ExportRequestError,
    parse_as_of,
    parse_filters,
    parse_kind,
    record_export,
)
from pro_app.exports.source import ExportFilter
from pro_app.exports.variables import Variable
from pro_app.extensions import db, limiter
from pro_app.i18n import _l, supported_locales
from pro_app.models import StaffUser
from pro_app.models.types import utcnow
from pro_app.services import api_tokens

log = logging.getLogger(__name__)

API_DEFAULT_LOCALE = "en"  # scripts are written in English; Italian on request
FILTER_PARAMETERS = (
    "site",
    "arm",
    "timepoint",
    "instrument",
    "randomized_from",
    "randomized_to",
    "as_of",
)
ROWS_PER_CHUNK = 500

NO_TOKEN = _l("Send your API token in the header: Authorization: Bearer <token>.")
BAD_TOKEN = _l("The API token is not valid: it may be revoked, expired or mistyped.")
WRONG_ROLE = _l("Your role does not give access to the API.")
UNKNOWN_PARAMETER = _l("There is no parameter %(name)s. The parameters are: %(known)s.")
HTTP_ERRORS: dict[int, tuple[str, LazyString]] = {
    400: ("bad_request", _l("The request could not be understood.")),
    404: (
        "not_found",
        _l("There is nothing at this address. The exports are listed at /api/v1/exports."),
    ),
    405: ("method_not_allowed", _l("The API is read-only: use GET.")),
    429: ("too_many_requests", _l("Too many requests. Please wait a minute and try again.")),
    500: ("server_error", _l("Something did not work on our side. Please try again shortly.")),
    503: ("unavailable", _l("The database cannot be reached just now. Please try again shortly.")),
}


def _rate_limit() -> str:
    return str(current_app.config["API_RATE_LIMIT"])


def _rate_limit_key() -> str:
    # One counter per token, so that colleagues behind one address do not share a limit.
    raw = _bearer_token()
    return f"token:{api_tokens.hash_token(raw)}" if raw else f"address:{get_remote_address()}"


limiter.shared_limit(_rate_limit, scope="api", key_func=_rate_limit_key)(bp)


def _bearer_token() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


def _api_locale() -> str:
    """English unless the script asks for another supported language (Accept-Language)."""
    if "api_locale" not in g:
        locales = supported_locales()
        default = API_DEFAULT_LOCALE if API_DEFAULT_LOCALE in locales else locales[0]
        ordered = (default, *(locale for locale in locales if locale != default))
        g.api_locale = request.accept_languages.best_match(ordered, default=default) or default
    return str(g.api_locale)


def _json_response(body: object, status: int = 200, **headers: str) -> Response:
    response = Response(
        json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json"
    )
    response.headers.update(headers)
    response.headers["Content-Language"] = _api_locale()
    return response


def _error(status: int, code: str, message: str | LazyString, **extra: str) -> Response:
    with force_locale(_api_locale()):
        body = {"error": code, "message": str(message), **extra}
    headers = {}
    if status == 401:
        # RFC 6750: say which scheme, and whether a token was sent but refused.
        challenge = 'Bearer realm="api"'
        if code == "invalid_token":
            challenge += ', error="invalid_token"'
        headers["WWW-Authenticate"] = challenge
    return _json_response(body, status, **headers)


@bp.before_request
def authenticate() -> ResponseReturnValue | None:
    """Every API request carries a bearer token; a browser's staff session counts for nothing."""
    raw = _bearer_token()
    if raw is None:
        return _error(401, "unauthorized", NO_TOKEN)
    now = utcnow()
    user = api_tokens.authenticate(raw, now)
    if user is None:
        if api_tokens.find_token(raw, now) is not None:
            return _error(403, "forbidden", WRONG_ROLE)
        return _error(401, "invalid_token", BAD_TOKEN)
    g.api_user = user
    return None


def _http_error(status: int) -> Response:
    if status not in HTTP_ERRORS:
        status = 400 if 400 <= status < 500 else 500
    code, message = HTTP_ERRORS[status]
    response = _error(status, code, message)
    if status == 405:
        response.headers["Allow"] = "GET, HEAD, OPTIONS"
    return response


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException) -> ResponseReturnValue:
    return _http_error(error.code or 500)


@bp.errorhandler(Exception)
def unexpected_error(error: Exception) -> ResponseReturnValue:
    if isinstance(error, HTTPException):
        return http_error(error)
    if isinstance(error, DATABASE_UNAVAILABLE):
        log.warning("database unavailable (%s) at %s", type(error).__name__, request.endpoint)
        response = _http_error(503)
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    else:
        # The type and place only: the message may carry personal data.
        log_unexpected(error, "unexpected API error")
        response = _http_error(500)
    rollback_quietly()
    return response


def _api_user() -> StaffUser:
    user: StaffUser = g.api_user
    return user


def _absolute(path: str) -> str:
    base_url = current_app.config.get("BASE_URL")
    return f"{str(base_url).rstrip('/')}{path}" if base_url else request.host_url.rstrip("/") + path


@bp.get("/exports")
def exports() -> ResponseReturnValue:
    """Every export this API serves, with its label and address."""
    with force_locale(_api_locale()):
        body = {
            "exports": [
                {
                    "kind": kind,
                    "label": str(label),
                    "url": _absolute(url_for("api.export", kind=kind)),
                }
                for kind, label in KINDS.items()
            ],
            "parameters": list(FILTER_PARAMETERS),
        }
    db.session.commit()  # the token's last use
    return _json_response(body)


@bp.get("/exports/<kind>")
def export(kind: str) -> ResponseReturnValue:
    """One export in the token owner's scope, streamed as a JSON document."""
    user = _api_user()
    unknown = sorted(set(request.args) - set(FILTER_PARAMETERS))
    if unknown:
        with force_locale(_api_locale()):  # the placeholders are filled in the answer's language
            message = str(UNKNOWN_PARAMETER) % {
                "name": unknown[0],
                "known": ", ".join(FILTER_PARAMETERS),
            }
        return _error(400, "bad_request", message)
    today = utcnow().astimezone(ZoneInfo(current_app.config["TIMEZONE"])).date()
    try:
        kind = parse_kind(kind)
        filters = parse_filters(request.args, user)
        as_of = parse_as_of(request.args, today)
    except ExportRequestError as refused:
        db.session.rollback()
        return _error(400, "bad_request", refused.message, field=refused.field)
    record_export(user, kind, "json", filters, "api")
    db.session.commit()  # the audit row stands even if the client stops reading
    document = _document(user.id, kind, filters, as_of, _api_locale())
    response = Response(stream_with_context(document), mimetype="application/json")
    response.headers["Content-Language"] = _api_locale()
    response.headers["Cache-Control"] = "no-store"
    return response


def _document(
    user_id: int, kind: str, filters: ExportFilter, as_of: date, locale: str
) -> Iterator[str]:
    """The JSON text a chunk at a time: the header object, then the rows as they are read."""
    # Streaming runs after the view's context was torn down and pushed again, with a new
    # database session: the user is loaded afresh here, not carried over from the view.
    user = db.session.get(StaffUser, user_id)
    dataset = build_dataset(kind, user, filters, as_of)
    with force_locale(locale):
        head = {
            "kind": dataset.kind,
            "generated_at": utcnow().isoformat(),
            "filters": {**_json_mapping(asdict(filters)), "as_of": as_of.isoformat()},
            "note": None if dataset.note is None else str(dataset.note),
            "variables": [_variable(variable) for variable in dataset.variables],
        }
        text = json.dumps(head, ensure_ascii=False, allow_nan=False)
        yield text[:-1] + ', "rows": ['
        names = dataset.names
        batch: list[str] = []
        separator = "\n"
        for row in dataset.rows:
            record = {name: _json_value(value) for name, value in zip(names, row, strict=True)}
            batch.append(json.dumps(record, ensure_ascii=False, allow_nan=False))
            if len(batch) >= ROWS_PER_CHUNK:
                yield separator + ",\n".join(batch)
                separator, batch = ",\n", []
        if batch:
            yield separator + ",\n".join(batch)
        yield "\n]}\n"


def _variable(variable: Variable) -> dict[str, Any]:
    return {
        "name": variable.name,
        "label": str(variable.label),
        "type": str(variable.type),
        "values": {str(code): str(label) for code, label in variable.values.items()},
        "missing": None if variable.missing is None else str(variable.missing),
    }


def _json_mapping(values: dict[str, Any]) -> dict[str, Any]:
    return {key: _json_value(value) for key, value in values.items()}


def _json_value(value: Any) -> Any:
    """A cell as JSON: ISO 8601 dates, null for missing and not-a-number, text otherwise."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


WRITE_METHODS = ["POST", "PUT", "PATCH", "DELETE"]


@bp.route("/", methods=["GET", *WRITE_METHODS])
@bp.route("/<path:_rest>", methods=["GET", *WRITE_METHODS])
def unknown(_rest: str = "") -> ResponseReturnValue:
    """Anything else under /api/v1: 404, or 405 for a write (the API changes nothing)."""
    return _http_error(404 if request.method in ("GET", "HEAD") else 405)
