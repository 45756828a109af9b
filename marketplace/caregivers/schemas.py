"""Carer invitations and grants, as the patient and as the carer see them."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from marketplace.schemas import StrictSchema, TrimmedEmail, TrimmedString, list_schema

STATES = ("invited", "active", "revoked", "expired")


class InviteInputSchema(StrictSchema):
    email = TrimmedEmail(required=True, validate=validate.Length(max=254))


class AcceptInputSchema(StrictSchema):
    code = TrimmedString(
        required=True,
        validate=validate.Length(min=1, max=100),
        metadata={"description": "The code from the invitation email"},
    )


class CarerGrantSchema(ma.Schema):
    """An invitation or carer, as the patient sees it."""

    id = ma.fields.UUID(required=True)
    email = ma.fields.String(allow_none=True, metadata={"description": "The invited address"})
    state = ma.fields.String(required=True, validate=validate.OneOf(STATES))
    carer_id = ma.fields.UUID(allow_none=True)
    carer_name = ma.fields.String(allow_none=True)
    invited_at = ma.fields.AwareDateTime(required=True)
    expires_at = ma.fields.AwareDateTime(
        required=True, metadata={"description": "Of the invitation"}
    )
    accepted_at = ma.fields.AwareDateTime(allow_none=True)
    revoked_at = ma.fields.AwareDateTime(allow_none=True)
    revoked_by_id = ma.fields.UUID(allow_none=True)


class CaredForSchema(ma.Schema):
    """A patient the caller is (or was) a carer for."""

    id = ma.fields.UUID(required=True, metadata={"description": "The grant"})
    patient_id = ma.fields.UUID(required=True)
    patient_name = ma.fields.String(required=True)
    state = ma.fields.String(required=True, validate=validate.OneOf(STATES))
    accepted_at = ma.fields.AwareDateTime(allow_none=True)
    revoked_at = ma.fields.AwareDateTime(allow_none=True)


CarerGrantListSchema = list_schema(CarerGrantSchema, "CarerGrantList")
CaredForListSchema = list_schema(CaredForSchema, "CaredForList")
