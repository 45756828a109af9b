"""Domain errors and the one JSON error envelope every failure answers with.

`{"error": {"code": "snake_case_code", "message": "human sentence", "details": {...}}}`
"""

from __future__ import annotations

import logging
from typing import Any

import marshmallow as ma
import psycopg
import redis
from flask import Flask, Response, jsonify
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)


class DomainError(Exception):
    """A rule was broken; services raise these and the handler maps them to a status."""

    status = 400
    code = "bad_request"
    message = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.details = details or {}
        self.headers: dict[str, str] = {}  # e.g. Retry-After
        super().__init__(self.message)


class Unauthenticated(DomainError):
    status = 401
    code = "unauthenticated"
    message = "Log in or send a valid bearer token."


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    message = "You are not allowed to do that."


class NotFound(DomainError):
    status = 404
    code = "not_found"
    message = "Not found."


class Conflict(DomainError):
    status = 409
    code = "conflict"
    message = "That conflicts with the current state."


class ValidationFailed(DomainError):
    status = 422
    code = "validation_failed"
    message = "Some fields are invalid."

    @classmethod
    def for_field(cls, field: str, message: str) -> ValidationFailed:
        return cls(details={"fields": {field: [message]}})


HTTP_ERROR_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    431: "header_fields_too_large",
    500: "internal_error",
    503: "service_unavailable",
}


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Response:
    response = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    response.status_code = status
    return response


def _flatten_webargs_messages(messages: dict[str, Any]) -> dict[str, Any]:
    """webargs nests errors by location ({"json": {"email": [...]}}); clients want fields."""
    fields: dict[str, Any] = {}
    for location_errors in messages.values():
        if isinstance(location_errors, dict):
            fields.update(location_errors)
        else:
            fields.setdefault("_schema", []).extend(location_errors)
    return fields


def http_error_response(error: HTTPException) -> Response:
    status = error.code or 500
    code = HTTP_ERROR_CODES.get(status, "http_error")
    message = error.description or "Request failed."
    details: dict[str, Any] = {}
    data = getattr(error, "data", None) or {}
    messages = data.get("errors") or data.get("messages")
    if status == 422 and messages:
        message = "Some fields are invalid."
        details = {"fields": _flatten_webargs_messages(messages)}
    elif status == 429:
        message = f"Too many requests: limit {error.description}. Try again later."
    elif status == 405:
        details = {"allowed": sorted(getattr(error, "valid_methods", None) or [])}
    response = error_response(status, code, message, details)
    for name, value in (data.get("headers") or {}).items():
        response.headers[name] = value
    if status == 405 and details["allowed"]:
        response.headers["Allow"] = ", ".join(details["allowed"])
    return response


def domain_error_response(error: DomainError) -> Response:
    response = error_response(error.status, error.code, error.message, error.details)
    response.headers.update(error.headers)
    return response


def storage_unavailable_response(error: Exception) -> Response:
    """Redis, where rate limits are counted, cannot be reached: the limited request is refused
    (fail closed), never let through uncounted."""
    log.warning("rate-limit storage unavailable: %s", type(error).__name__)
    response = error_response(
        503, "service_unavailable", "This cannot be done just now. Try again in a minute."
    )
    response.headers["Retry-After"] = "60"
    return response


DATABASE_RETRY_AFTER_SECONDS = 5
# SQLSTATEs of a server that is not there (yet) or going away: connection exceptions (class 08),
# admin and crash shutdown, "the database system is starting up" (57P01-57P03), and too many
# connections (53300). A failure without a SQLSTATE was raised by the client: refused, reset,
# "server closed the connection unexpectedly", "the connection is closed".
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")


def database_unavailable(error: BaseException | None) -> bool:
    """Whether `error` (or what it was raised from) says PostgreSQL could not be reached or the
    connection died: a brief outage, not a bug. SQLite errors and query errors are not."""
    for _ in range(5):  # the exception and a few it was raised from or while handling
        if error is None:
            return False
        if isinstance(error, sa_exc.TimeoutError):  # no pooled connection came free in time
            return True
        if isinstance(error, sa_exc.DBAPIError):
            if error.connection_invalidated:
                return True
            original = error.orig
            if isinstance(original, psycopg.OperationalError | psycopg.InterfaceError):
                sqlstate = original.sqlstate
                return sqlstate is None or sqlstate.startswith(_UNAVAILABLE_SQLSTATES)
            return False
        if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
            return error.sqlstate is None or error.sqlstate.startswith(_UNAVAILABLE_SQLSTATES)
        error = error.__cause__ or error.__context__
    return False


def _database_unavailable_body() -> Response:
    response = error_response(
        503,
        "database_unavailable",
        "The database cannot be reached just now. Try again in a few seconds.",
    )
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


def _log_database_unavailable(error: BaseException) -> None:
    # The kind only: a DBAPIError's text holds the statement and the server's address.
    original = getattr(error, "orig", None)
    log.warning(
        "database unavailable: %s%s",
        type(error).__name__,
        f" ({type(original).__name__})" if original is not None else "",
    )


def database_unavailable_response(error: BaseException) -> Response:
    """503 `database_unavailable` with Retry-After: PostgreSQL is restarting, failing over or
    out of connections. The request's transaction did not commit."""
    _log_database_unavailable(error)
    return _database_unavailable_body()


def replace_with_database_unavailable(response: Response, error: BaseException) -> Response:
    """Turn an answer whose commit failed into the 503, in place, keeping the headers other
    hooks added (request id, security headers) and dropping those about what was not made."""
    _log_database_unavailable(error)
    replacement = _database_unavailable_body()
    response.status_code = replacement.status_code
    response.direct_passthrough = False
    response.set_data(replacement.get_data())
    for name in ("Location", "ETag", "Last-Modified", "Content-Disposition", "Set-Cookie"):
        del response.headers[name]
    response.headers["Content-Type"] = replacement.headers["Content-Type"]
    response.headers["Retry-After"] = replacement.headers["Retry-After"]
    return response


def unexpected_error_response(error: Exception) -> Response:
    if isinstance(error, HTTPException) and not isinstance(error, InternalServerError):
        return http_error_response(error)
    original = getattr(error, "original_exception", error)
    if database_unavailable(original):
        return database_unavailable_response(original)
    log.error("unhandled error: %s", type(original).__name__, exc_info=original)
    return error_response(500, "internal_error", "Something went wrong on our side.")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(DomainError, domain_error_response)
    app.register_error_handler(redis.ConnectionError, storage_unavailable_response)
    app.register_error_handler(redis.TimeoutError, storage_unavailable_response)
    app.register_error_handler(HTTPException, http_error_response)
    app.register_error_handler(InternalServerError, unexpected_error_response)
    app.register_error_handler(Exception, unexpected_error_response)


class ErrorBodySchema(ma.Schema):
    code = ma.fields.String(required=True, metadata={"example": "validation_failed"})
    message = ma.fields.String(required=True)
    details = ma.fields.Dict(required=True)


class ErrorSchema(ma.Schema):
    """The error envelope, for the OpenAPI document."""

    error = ma.fields.Nested(ErrorBodySchema, required=True)
