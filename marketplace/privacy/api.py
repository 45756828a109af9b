"""The caller's own data: a copy of all of it, and erasure (UK GDPR)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from marketplace.accounts.auth import (
    authenticated,
    counted_password_check,
    current_account,
    log_out,
)
from marketplace.booking.presenters import booking_policy
from marketplace.clock import business_today
from marketplace.db import request_session, utcnow
from marketplace.errors import ErrorSchema
from marketplace.privacy import service
from marketplace.schemas import ApiBlueprint, StrictSchema
from marketplace.storage import evidence_store

blp = ApiBlueprint("privacy", __name__, url_prefix="/api/v1", description="Your data (UK GDPR)")


class ExportSchema(ma.Schema):
    account = ma.fields.Dict(required=True)
    logins_and_tokens = ma.fields.List(ma.fields.Dict(), required=True)
    practitioner = ma.fields.Dict(allow_none=True, required=True)
    care_requests = ma.fields.List(ma.fields.Dict(), required=True)
    bookings = ma.fields.List(ma.fields.Dict(), required=True)
    messages = ma.fields.List(ma.fields.Dict(), required=True)
    reviews = ma.fields.List(ma.fields.Dict(), required=True)
    carers = ma.fields.List(
        ma.fields.Dict(),
        required=True,
        metadata={"description": "Carers you invited or had, and patients you cared for"},
    )
    audit = ma.fields.List(ma.fields.Dict(), required=True)


class ErasureSchema(StrictSchema):
    password = ma.fields.String(required=True, load_only=True, validate=validate.Length(max=128))


@blp.route("/me/export", methods=["GET"])
@authenticated()
@blp.response(200, ExportSchema)
def export_my_data() -> dict[str, Any]:
    """Everything stored about you, as JSON (tokens and passwords only as metadata)."""
    return service.export_account(request_session(), current_account())


@blp.route("/me", methods=["DELETE"])
@authenticated()
@blp.arguments(ErasureSchema)
@blp.response(204)
@blp.alt_response(422, schema=ErrorSchema, description="Wrong password")
@blp.alt_response(429, schema=ErrorSchema, description="Too many wrong passwords: Retry-After")
@blp.alt_response(409, schema=ErrorSchema, description="`admin_not_erasable`")
def erase_my_account(body: dict[str, Any]) -> None:
    """Erase your account: personal data and notes are erased, future visits cancelled (the
    other party is told), a practitioner is delisted and their evidence deleted."""
    user = current_account()
    counted_password_check(  # a stolen session cannot guess its way to the password
        user.email,
        lambda: service.erase_account(
            request_session(),
            user,
            body["password"],
            now=utcnow(),
            today=business_today(),
            policy=booking_policy(),
            evidence_store=evidence_store(),
        ),
    )
    log_out()
