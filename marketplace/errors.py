"""Domain errors and the one JSON error envelope every failure answers with.

`{"error": {"code": "snake_case_code", "message": "human sentence", "details": {...}}}`
"""

from __future__ import annotations

import logging
from typing import Any

import marshmallow as ma
import redis
from flask import Flask, Response, jsonify
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


def unexpected_error_response(error: Exception) -> Response:
    if isinstance(error, HTTPException) and not isinstance(error, InternalServerError):
        return http_error_response(error)
    original = getattr(error, "original_exception", error)
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
