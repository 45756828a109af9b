"""Flask extensions, created once and bound to the app in `create_app`."""

from __future__ import annotations

from flask import Response, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_smorest import Api
from werkzeug.exceptions import HTTPException

from marketplace.errors import ErrorSchema, http_error_response


class MarketplaceApi(Api):  # type: ignore[misc]
    """flask-smorest with the project's error envelope, in the answers and in the docs."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException) -> Response:
        return http_error_response(error)


class RequestLoaderLoginManager(LoginManager):  # type: ignore[misc]
    """Flask-Login that finds the user only through the request loader (the server-side login
    session or a bearer token). Its remember-me cookie is never issued, so a cookie of that
    name, sent by anyone, must not decide who is calling."""

    def _load_user(self) -> None:
        user = self._request_callback(request) if self._request_callback else None
        self._update_request_context_with_user(user)


login_manager = RequestLoaderLoginManager()
limiter = Limiter(key_func=get_remote_address)
