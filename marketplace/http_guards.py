"""Checks every request passes before it reaches a view, and a request id for tracing."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Flask, Request, Response, current_app, g, request
from werkzeug.exceptions import (
    RequestEntityTooLarge,
    RequestHeaderFieldsTooLarge,
    RequestURITooLarge,
    UnsupportedMediaType,
)
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream, get_content_length

from marketplace.errors import Forbidden

F = TypeVar("F", bound=Callable[..., Any])

STATE_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The request head the app accepts; gunicorn.conf.py lets a little more through, so that what
# is refused here is answered in the error envelope rather than by gunicorn's HTML.
MAX_URL_BYTES = 4096
MAX_HEADER_BYTES = 16 * 1024  # every header line together
MAX_HEADER_FIELDS = 64
# Any HTML answer without a policy of its own (the back office and the API docs set stricter
# or wider ones): the project's own script, styles and images only, nothing framed or framing.
HTML_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "object-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class CrossSiteRequest(Forbidden):
    code = "cross_site_request"
    message = "A request from another site cannot use your login session."


def accepts_multipart(view: F) -> F:
    """Mark a view (such as a file upload) that takes multipart/form-data instead of JSON."""
    view.accepts_multipart = True  # type: ignore[attr-defined]
    return view


def accepts_forms(view: F) -> F:
    """Mark a server-rendered page whose forms post application/x-www-form-urlencoded; such a
    view must check the form's CSRF token (a Flask-WTF form does)."""
    view.accepts_forms = True  # type: ignore[attr-defined]
    return view


def allow_body_up_to(limit: int) -> Callable[[F], F]:
    """Raise the request body limit for one view (an upload); everywhere else it stays small."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            request.max_content_length = limit
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorator


class _WholeBodyLimit(LimitedStream):
    """A body without Content-Length (chunked), read to at most `limit` bytes. Werkzeug's own
    stream stops silently at the limit when the whole body is read (`get_data`), so a chunked
    body one byte over MAX_CONTENT_LENGTH reached the JSON parser cut short; this one raises
    413 as a body with a Content-Length over the limit does."""

    def __init__(self, stream: Any, limit: int) -> None:
        super().__init__(stream, limit, is_max=True)
        self._source = stream

    def readall(self) -> bytes:
        data = super().readall()
        if self.is_exhausted and self._source.read(1):
            raise RequestEntityTooLarge()
        return data


class LimitedRequest(Request):
    """Flask's request, with chunked bodies held to `max_content_length` as a whole."""

    @cached_property
    def stream(self) -> Any:
        limit = self.max_content_length
        terminated = self.environ.get("wsgi.input_terminated")
        if limit is not None and terminated and get_content_length(self.environ) is None:
            return _WholeBodyLimit(self.environ["wsgi.input"], limit)
        return super().stream


def refuse_oversized_heads() -> None:
    """414 for a URL over MAX_URL_BYTES, 431 for headers over MAX_HEADER_BYTES or
    MAX_HEADER_FIELDS, in the error envelope (gunicorn's own limits are set above these)."""
    environ = request.environ
    if _request_target_bytes(environ) > MAX_URL_BYTES:
        raise RequestURITooLarge(f"The URL is longer than {MAX_URL_BYTES} bytes.")
    fields = [(name, value) for name, value in environ.items() if _is_header(name)]
    size = sum(len(name) + len(str(value)) + 4 for name, value in fields)  # "name: value\r\n"
    if len(fields) > MAX_HEADER_FIELDS or size > MAX_HEADER_BYTES:
        raise RequestHeaderFieldsTooLarge(
            f"Send at most {MAX_HEADER_FIELDS} header fields and {MAX_HEADER_BYTES} bytes of "
            "headers."
        )


def _is_header(key: str) -> bool:
    return key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH")


def _request_target_bytes(environ: dict[str, Any]) -> int:
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return len(raw)
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING", "")
    return len(path) + (len(query) + 1 if query else 0)


def _has_body() -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "")


def _view_accepts(marker: str) -> bool:
    view = current_app.view_functions.get(request.endpoint or "")
    view_class = getattr(view, "view_class", None)
    handler = getattr(view_class, request.method.lower(), None) if view_class else view
    return bool(getattr(handler, marker, False))


def require_json_body() -> None:
    """State-changing requests with a body must send JSON (or multipart, or a form, where a view
    says so)."""
    if request.method not in STATE_CHANGING_METHODS or not _has_body():
        return
    if request.mimetype == "application/json":
        return
    if request.mimetype == "multipart/form-data" and _view_accepts("accepts_multipart"):
        return
    if request.mimetype == "application/x-www-form-urlencoded" and _view_accepts("accepts_forms"):
        return
    raise UnsupportedMediaType("Send the request body as application/json.")


def bearer_secret(incoming: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None without one (or if empty)."""
    scheme, _, secret = incoming.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    return secret.strip()


def refuse_cross_site_requests() -> None:
    """CSRF: a state-changing request that a browser sends with the session cookie must come
    from this site (Sec-Fetch-Site, else Origin). Bearer-token clients send no cookie that a
    browser would add on its own, so they are exempt; so are clients that send neither header
    (not a browser). The back office's forms also carry a CSRF token."""
    if request.method not in STATE_CHANGING_METHODS:
        return
    if bearer_secret(request) is not None:
        return  # authenticated by the token alone (an empty one falls back to the cookie)
    if current_app.config["SESSION_COOKIE_NAME"] not in request.cookies:
        return
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        if fetch_site not in ("same-origin", "none"):
            raise CrossSiteRequest()
        return
    origin = request.headers.get("Origin")
    if origin is not None and origin.lower() not in _trusted_origins():
        raise CrossSiteRequest()


def _trusted_origins() -> set[str]:
    own = request.host_url.rstrip("/").lower()
    return {own, *(origin.rstrip("/").lower() for origin in current_app.config["TRUSTED_ORIGINS"])}


def add_security_headers(response: Response) -> Response:
    """Headers every answer carries (OWASP secure headers); pages may set a stricter policy."""
    headers = response.headers
    headers["X-Content-Type-Options"] = "nosniff"
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    if request.path.startswith("/api/"):  # answers hold personal data: never in a shared cache
        headers["Cache-Control"] = "no-store"
    if response.mimetype == "text/html":  # pages (and redirects, error pages) set no other
        headers.setdefault("Content-Security-Policy", HTML_CONTENT_SECURITY_POLICY)
    else:  # JSON, files: nothing in them may run or be framed
        headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
    if current_app.config["HSTS_SECONDS"]:
        headers["Strict-Transport-Security"] = (
            f"max-age={current_app.config['HSTS_SECONDS']}; includeSubDomains"
        )
    return response


def assign_request_id() -> None:
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex


def echo_request_id(response: Response) -> Response:
    request_id = g.get("request_id")
    if request_id:
        response.headers["X-Request-ID"] = request_id
    return response


def register_request_guards(app: Flask) -> None:
    app.request_class = LimitedRequest
    app.before_request(assign_request_id)
    app.before_request(refuse_oversized_heads)
    app.before_request(refuse_cross_site_requests)
    app.before_request(require_json_body)
    app.after_request(echo_request_id)
    app.after_request(add_security_headers)
