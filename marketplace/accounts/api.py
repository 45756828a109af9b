"""Accounts endpoints: thin views that parse, call one service function and serialise."""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app

from marketplace.accounts import service
from marketplace.accounts.auth import (
    authenticated,
    counted_password_check,
    current_access_token,
    current_account,
    log_in,
    log_out,
)
from marketplace.accounts.models import Role, TokenKind, User
from marketplace.accounts.schemas import (
    IssuedTokenSchema,
    LoginSchema,
    PasswordChangeSchema,
    RegisterSchema,
    TokenListSchema,
    TokenRequestSchema,
    UserSchema,
)
from marketplace.db import request_session
from marketplace.errors import ErrorSchema
from marketplace.extensions import limiter
from marketplace.pagination import PageQuerySchema
from marketplace.schemas import ApiBlueprint

blp = ApiBlueprint("accounts", __name__, url_prefix="/api/v1", description="Accounts and login")


@blp.route("/auth/register", methods=["POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_REGISTER"])
@blp.arguments(RegisterSchema)
@blp.response(201, UserSchema)
@blp.alt_response(409, schema=ErrorSchema, description="Email already registered")
def register(body: dict[str, Any]) -> User:
    """Create a patient or practitioner account."""
    return service.register_user(request_session(), **{**body, "role": Role(body["role"])})


@blp.route("/auth/login", methods=["POST"])
@blp.arguments(LoginSchema)
@blp.response(200, UserSchema)
@blp.alt_response(401, schema=ErrorSchema, description="Wrong email or password")
@blp.alt_response(429, schema=ErrorSchema, description="Too many failed logins: Retry-After")
@blp.alt_response(503, schema=ErrorSchema, description="Failed logins cannot be counted just now")
def login(body: dict[str, Any]) -> User:
    """Log in with email and password; answers with a session cookie."""
    email, password = body["email"], body["password"]
    user = counted_password_check(
        email, lambda: service.authenticate(request_session(), email, password)
    )
    log_in(user)
    return user


@blp.route("/auth/logout", methods=["POST"])
@authenticated()
@blp.response(204)
def logout() -> None:
    """End this login session (or revoke the bearer token used)."""
    log_out()


@blp.route("/auth/tokens", methods=["POST"])
@authenticated()
@blp.arguments(TokenRequestSchema)
@blp.response(201, IssuedTokenSchema)
def create_token(body: dict[str, Any]) -> dict[str, Any]:
    """Make an API token for `Authorization: Bearer`; the secret is shown only once."""
    issued = service.issue_token(
        request_session(), current_account(), TokenKind.API, name=body["name"]
    )
    record = issued.record
    return {
        "id": record.id,
        "name": record.name,
        "created_at": record.created_at,
        "last_used_at": record.last_used_at,
        "expires_at": record.expires_at,
        "token": issued.secret,
    }


@blp.route("/auth/tokens", methods=["GET"])
@authenticated()
@blp.arguments(PageQuerySchema, location="query")
@blp.response(200, TokenListSchema)
def list_tokens(query: dict[str, Any]) -> Any:
    """The caller's live API tokens (never their secrets)."""
    return service.list_api_tokens(
        request_session(), current_account(), query["limit"], query["cursor"]
    )


@blp.route("/auth/tokens/<uuid:token_id>", methods=["DELETE"])
@authenticated()
@blp.response(204)
@blp.alt_response(404, schema=ErrorSchema, description="No such token of yours")
def delete_token(token_id: uuid.UUID) -> None:
    """Revoke one of your API tokens."""
    service.revoke_api_token(request_session(), current_account(), token_id)


@blp.route("/me", methods=["GET"])
@authenticated()
@blp.response(200, UserSchema)
def get_my_account() -> User:
    """The logged-in user."""
    return current_account()


@blp.route("/me/password", methods=["POST"])
@authenticated()
@blp.arguments(PasswordChangeSchema)
@blp.response(204)
@blp.alt_response(429, schema=ErrorSchema, description="Too many wrong passwords: Retry-After")
def change_password(body: dict[str, Any]) -> None:
    """Change your password; every other session and API token ends."""
    user = current_account()
    counted_password_check(  # a stolen session cannot guess its way to the password
        user.email,
        lambda: service.change_password(
            request_session(),
            user,
            current_password=body["current_password"],
            new_password=body["new_password"],
            current_token=current_access_token(),
        ),
    )
