"""Request and response shapes of the accounts endpoints."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from marketplace.accounts.models import Role
from marketplace.accounts.passwords import MAX_LENGTH
from marketplace.schemas import StrictSchema, TrimmedEmail, TrimmedString, list_schema

# Longer than any allowed password, so an over-long one reaches the policy and gets its message,
# but short enough that nobody can make the server hash megabytes.
_PASSWORD_FIELD_LIMIT = validate.Length(max=MAX_LENGTH * 8)


class RegisterSchema(StrictSchema):
    email = TrimmedEmail(required=True, validate=validate.Length(max=254))
    password = ma.fields.String(required=True, load_only=True, validate=_PASSWORD_FIELD_LIMIT)
    full_name = TrimmedString(required=True, validate=validate.Length(min=1, max=200))
    role = ma.fields.String(
        required=True, validate=validate.OneOf([Role.PATIENT.value, Role.PRACTITIONER.value])
    )
    phone = ma.fields.String(load_default=None, allow_none=True, validate=validate.Length(max=32))


class LoginSchema(StrictSchema):
    email = ma.fields.String(required=True, validate=validate.Length(max=254))
    password = ma.fields.String(required=True, load_only=True, validate=_PASSWORD_FIELD_LIMIT)


class UserSchema(ma.Schema):
    id = ma.fields.UUID(required=True)
    email = ma.fields.String(required=True)
    full_name = ma.fields.String(required=True)
    role = ma.fields.Enum(Role, by_value=True, required=True)
    phone = ma.fields.String(allow_none=True)
    created_at = ma.fields.AwareDateTime(required=True)


class TokenRequestSchema(StrictSchema):
    name = TrimmedString(load_default=None, allow_none=True, validate=validate.Length(max=100))


class TokenSchema(ma.Schema):
    id = ma.fields.UUID(required=True)
    name = ma.fields.String(allow_none=True)
    created_at = ma.fields.AwareDateTime(required=True)
    last_used_at = ma.fields.AwareDateTime(allow_none=True)
    expires_at = ma.fields.AwareDateTime(allow_none=True)


class IssuedTokenSchema(TokenSchema):
    token = ma.fields.String(
        required=True, metadata={"description": "The bearer secret; shown only this once."}
    )


TokenListSchema = list_schema(TokenSchema, "TokenList")


class PasswordChangeSchema(StrictSchema):
    current_password = ma.fields.String(
        required=True, load_only=True, validate=_PASSWORD_FIELD_LIMIT
    )
    new_password = ma.fields.String(required=True, load_only=True, validate=_PASSWORD_FIELD_LIMIT)
