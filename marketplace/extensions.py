"""Flask extensions, created once and bound to the app in `create_app`."""

from __future__ import annotations

from flask import Response
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


login_manager = LoginManager()
limiter = Limiter(key_func=get_remote_address)
