"""Who is calling: a session cookie (Flask-Login) or an `Authorization: Bearer` token."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Flask, Request, current_app, g, request, session
from flask_login import current_user, login_user, logout_user
from flask_smorest import Blueprint

from marketplace.accounts import service
from marketplace.accounts.models import AccessToken, Role, TokenKind, User
from marketplace.accounts.throttle import LoginThrottle, ThrottlePolicy, failure_store
from marketplace.db import request_session
from marketplace.errors import Forbidden, Unauthenticated
from marketplace.extensions import login_manager
from marketplace.http_guards import bearer_secret

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

SESSION_TOKEN_KEY = "sid"  # noqa: S105 (a session key name, not a secret)
SECURITY_REQUIREMENTS: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"sessionCookie": []}]


def session_policy() -> service.SessionPolicy:
    return service.SessionPolicy(
        idle=timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"]),
        absolute=timedelta(hours=current_app.config["SESSION_ABSOLUTE_HOURS"]),
    )


def load_user_from_request(request: Request) -> User | None:
    """Bearer token first (other clients), then the login session in the signed cookie."""
    db = request_session()
    token: AccessToken | None
    bearer = bearer_secret(request)
    if bearer is not None:
        token = service.resolve_token(db, bearer, TokenKind.API)
        if token is None:
            raise Unauthenticated("The bearer token is invalid, expired or revoked.")
    elif SESSION_TOKEN_KEY in session:
        token = service.resolve_token(
            db, session[SESSION_TOKEN_KEY], TokenKind.SESSION, session_policy()
        )
        if token is None:
            session.clear()
            return None
    else:
        return None
    g.access_token = token
    return token.user


def current_access_token() -> AccessToken | None:
    token: AccessToken | None = g.get("access_token")
    return token


def current_account() -> User:
    """The logged-in user, or 401."""
    if not current_user.is_authenticated:
        raise Unauthenticated()
    return cast(User, current_user._get_current_object())


def log_in(user: User) -> None:
    """Start a fresh login session: a new session id every login (no session fixation), and
    the login this browser had before ends server-side."""
    previous = session.get(SESSION_TOKEN_KEY)
    if previous:
        token = service.resolve_token(request_session(), previous, TokenKind.SESSION)
        if token is not None:
            service.revoke_token(request_session(), token)
    session.clear()
    issued = service.start_login_session(request_session(), user, session_policy())
    session[SESSION_TOKEN_KEY] = issued.secret
    session.permanent = True
    login_user(user)
    g.access_token = issued.record


def log_out() -> None:
    """End the caller's login session server-side (or revoke the bearer token used)."""
    token = current_access_token()
    if token is not None:
        service.revoke_token(request_session(), token)
    logout_user()
    session.clear()


def authenticated(*roles: Role) -> Callable[[F], F]:
    """Require a logged-in caller (and one of `roles`, if given); documents the security."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = current_account()
            if roles and user.role not in roles:
                raise Forbidden()
            return view(*args, **kwargs)

        documented: F = Blueprint.doc(security=SECURITY_REQUIREMENTS)(wrapper)
        return documented

    return decorator


def login_throttle() -> LoginThrottle:
    throttle: LoginThrottle = current_app.extensions["login_throttle"]
    return throttle


def counted_password_check(email: str, check: Callable[[], T]) -> T:
    """Run `check`, which checks a password of the account `email` names, within that account's
    one budget of guesses (see `marketplace.accounts.throttle`): every way to present a password
    goes through here. A wrong one (`InvalidCredentials`, `WrongPassword`) counts; 429 with
    Retry-After when no guess is left, before the password is looked at."""
    attempt = login_throttle().begin(email, request.remote_addr)
    try:
        result = check()
    except (service.InvalidCredentials, service.WrongPassword):
        raise
    except BaseException:
        attempt.not_checked()
        raise
    attempt.right()
    return result


def init_auth(app: Flask) -> None:
    config = app.config
    app.extensions["login_throttle"] = LoginThrottle(
        failure_store(config["RATELIMIT_STORAGE_URI"]), lambda: ThrottlePolicy.from_config(config)
    )
    login_manager.init_app(app)
    login_manager.session_protection = None  # sessions are server-side rows, checked per request
    login_manager.request_loader(load_user_from_request)

    @login_manager.unauthorized_handler
    def _unauthorized() -> None:
        raise Unauthenticated()
