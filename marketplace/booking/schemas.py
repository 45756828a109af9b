"""Request and response shapes of care requests and matches."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from marketplace.booking.models import RequestStatus
from marketplace.practitioners.models import Mode, Profession
from marketplace.schemas import (
    InputSchema,
    StrictSchema,
    TrimmedString,
    bounded_datetime,
    list_schema,
)


class CareRequestInputSchema(StrictSchema):
    mode = ma.fields.Enum(Mode, by_value=True, required=True)
    specialty = ma.fields.String(required=True, validate=validate.Length(max=40))
    postcode = TrimmedString(load_default=None, allow_none=True, validate=validate.Length(max=16))
    latitude = ma.fields.Float(load_default=None, allow_none=True, validate=validate.Range(-90, 90))
    longitude = ma.fields.Float(
        load_default=None, allow_none=True, validate=validate.Range(-180, 180)
    )
    earliest = ma.fields.AwareDateTime(required=True, validate=bounded_datetime)
    latest = ma.fields.AwareDateTime(required=True, validate=bounded_datetime)
    notes = TrimmedString(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=2000),
        metadata={
            "description": "Health information: shown to you, admins and your booked "
            "practitioner only"
        },
    )


class CareRequestSchema(ma.Schema):
    """The request as its patient (and admins) see it, notes included."""

    id = ma.fields.UUID(required=True)
    mode = ma.fields.Enum(Mode, by_value=True, required=True)
    specialty = ma.fields.String(required=True)
    postcode = ma.fields.String(allow_none=True)
    latitude = ma.fields.Float(allow_none=True)
    longitude = ma.fields.Float(allow_none=True)
    earliest = ma.fields.AwareDateTime(required=True)
    latest = ma.fields.AwareDateTime(required=True)
    notes = ma.fields.String(allow_none=True)
    status = ma.fields.Enum(RequestStatus, by_value=True, required=True)
    created_at = ma.fields.AwareDateTime(required=True)


class FeedItemSchema(ma.Schema):
    """What a practitioner sees of an open request: the area only, no notes, no name."""

    id = ma.fields.UUID(attribute="request.id", required=True)
    mode = ma.fields.Enum(Mode, by_value=True, attribute="request.mode", required=True)
    specialty = ma.fields.String(attribute="request.specialty", required=True)
    outcode = ma.fields.String(attribute="request.outcode", allow_none=True)
    earliest = ma.fields.AwareDateTime(attribute="request.earliest", required=True)
    latest = ma.fields.AwareDateTime(attribute="request.latest", required=True)
    distance_km = ma.fields.Float(allow_none=True)


FeedSchema = list_schema(FeedItemSchema, "OpenRequestFeed")


class MatchQuerySchema(InputSchema):
    limit = ma.fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class SlotOutSchema(ma.Schema):
    start = ma.fields.AwareDateTime(required=True)
    end = ma.fields.AwareDateTime(required=True)


class MatchSchema(ma.Schema):
    practitioner_id = ma.fields.UUID(attribute="practitioner.id", required=True)
    full_name = ma.fields.String(attribute="practitioner.user.full_name", required=True)
    profession = ma.fields.Enum(
        Profession, by_value=True, attribute="practitioner.profession", required=True
    )
    distance_km = ma.fields.Float(allow_none=True, required=True)
    score = ma.fields.Float(required=True)
    reasons = ma.fields.List(ma.fields.String(), required=True)
    next_slots = ma.fields.List(ma.fields.Nested(SlotOutSchema), required=True)


MatchListSchema = list_schema(MatchSchema, "MatchList")
