"""Flask extensions, created once and bound to the app in `create_app`."""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from flask import Blueprint, Response, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user
from flask_smorest import Api
from werkzeug.exceptions import HTTPException

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
    """The client's address as rate limits see it: an IPv6 client is its /64 (one household or
    server gets a whole /64, so single addresses are free to rotate)."""
    address = get_remote_address()
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return address


login_manager = RequestLoaderLoginManager()
limiter = Limiter(key_func=client_network)


def _named_account_digest() -> str:
    """A hash of the email a login attempt names (JSON or form), for its limits' keys."""
    try:
        body = request.get_json(silent=True) if request.is_json else request.form
    except RecursionError:  # absurdly nested JSON: the view answers 400
        body = None
    email = body.get("email") if isinstance(body, Mapping) else None
    # Hashed: the limiter's storage (Redis) and its logs never hold the address itself.
    # surrogatepass: JSON can carry a lone surrogate; the key must not raise (the schema answers
    # 422), or the limiter takes the error for a storage failure and falls back to memory.
    normalised = str(email or "").strip().lower().encode("utf-8", "surrogatepass")
    return hashlib.sha256(normalised).hexdigest()[:32]


def login_attempt_account() -> str:
    """The account a login attempt names, as the key of its failed-login limit from anywhere."""
    return f"login-account:{_named_account_digest()}"


def login_attempt_address_and_account() -> str:
    """The client address and the account it names, as one key: typos and guesses at one account
    from one place use up that pair's budget, not the whole address's."""
    return f"login-address-account:{client_network()}|{_named_account_digest()}"


def _failed_login_limit(setting: str, key_func: Callable[[], str]) -> Callable[[F], F]:
    return cast(Callable[[F], F], limiter.limit(
        lambda: current_app.config[setting],
        key_func=key_func,
        deduct_when=lambda response: response.status_code == 401,
        methods=["POST"],
    ))  # fmt: skip


def limit_failed_logins(view: F) -> F:
    """Failed logins (answers 401) count per client address and account, per account from
    anywhere (ASVS V2.2.1), and per address only against a much higher ceiling, so one address
    shared by many people (a care home behind one NAT) is not locked out by a few typos.
    Past any of them every attempt is a 429 with Retry-After."""
    per_address_and_account = _failed_login_limit(
        "RATELIMIT_FAILED_LOGIN", login_attempt_address_and_account
    )
    per_account = _failed_login_limit("RATELIMIT_FAILED_LOGIN_ACCOUNT", login_attempt_account)
    per_address = _failed_login_limit("RATELIMIT_FAILED_LOGIN_ADDRESS", client_network)
    return per_address(per_account(per_address_and_account(view)))


def limit_password_checks(view: F) -> F:
    """A wrong current password (422) on a signed-in request counts like a failed login of that
    account from one address: a stolen session cannot guess its way to the password."""
    return cast(F, limiter.shared_limit(  # one budget across every view that checks it
        lambda: current_app.config["RATELIMIT_FAILED_LOGIN"],
        scope="password-check",
        key_func=lambda: str(getattr(current_user, "id", "anonymous")),
        deduct_when=lambda response: response.status_code == 422,
    )(view))  # fmt: skip
