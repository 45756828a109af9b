"""Flask extensions, created once and bound to the app in `create_app`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Response, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_smorest import Api
from werkzeug.exceptions import HTTPException

from marketplace.addresses import client_key
from marketplace.apidocs import register_swagger_ui
from marketplace.errors import ErrorSchema, http_error_response

F = TypeVar("F", bound=Callable[..., Any])


class MarketplaceApi(Api):  # type: ignore[misc]
    """flask-smorest with the project's error envelope, in the answers and in the docs."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException) -> Response:
        return http_error_response(error)

    def _register_swagger_ui_rule(self, blueprint: Blueprint) -> None:
        docs_path = self.config.get("OPENAPI_SWAGGER_UI_PATH")
        if docs_path is not None:
            register_swagger_ui(blueprint, docs_path)


class RequestLoaderLoginManager(LoginManager):  # type: ignore[misc]
    """Flask-Login that finds the user only through the request loader (the server-side login
    session or a bearer token). Its remember-me cookie is never issued, so a cookie of that
    name, sent by anyone, must not decide who is calling."""

    def _load_user(self) -> None:
        user = self._request_callback(request) if self._request_callback else None
        self._update_request_context_with_user(user)


def client_network() -> str:
    """The client's address as rate limits see it: an IPv4 address or an IPv6 /64 (never
    raises, whatever the address; see `marketplace.addresses`)."""
    return client_key(get_remote_address())


login_manager = RequestLoaderLoginManager()
limiter = Limiter(key_func=client_network)
