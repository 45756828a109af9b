"""Request and response shapes of care requests and matches."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from marketplace.booking.models import BookingStatus, RequestStatus
from marketplace.pagination import PageQuerySchema
from marketplace.practitioners.models import Mode, Profession, VisitType
from marketplace.schemas import (
    InputSchema,
    StrictSchema,
    TrimmedString,
    bounded_datetime,
    list_schema,
)


def acting_for_field() -> ma.fields.UUID:
    return ma.fields.UUID(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "A carer acting for a patient: the patient's id (leave out to "
            "act for yourself)"
        },
    )


class CareRequestInputSchema(StrictSchema):
    patient_id = acting_for_field()
    mode = ma.fields.Enum(Mode, by_value=True, required=True)
    specialty = ma.fields.String(required=True, validate=validate.Length(max=40))
    postcode = TrimmedString(load_default=None, allow_none=True, validate=validate.Length(max=16))
    latitude = ma.fields.Float(load_default=None, allow_none=True, validate=validate.Range(-90, 90))
    longitude = ma.fields.Float(
        load_default=None, allow_none=True, validate=validate.Range(-180, 180)
    )
    earliest = ma.fields.AwareDateTime(required=True, validate=bounded_datetime)
    latest = ma.fields.AwareDateTime(required=True, validate=bounded_datetime)
    address = TrimmedString(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=500),
        metadata={
            "description": "Home visits (required): where to go. Shown to you, admins and the "
            "practitioner of a visit booked from this request while it is confirmed; never in "
            "the open-requests feed"
        },
    )
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
    """The request as its patient (and their carers), admins and the practitioner of a visit
    booked from it (while confirmed) see it, notes and address included."""

    id = ma.fields.UUID(required=True)
    mode = ma.fields.Enum(Mode, by_value=True, required=True)
    specialty = ma.fields.String(required=True)
    postcode = ma.fields.String(allow_none=True)
    latitude = ma.fields.Float(allow_none=True)
    longitude = ma.fields.Float(allow_none=True)
    earliest = ma.fields.AwareDateTime(required=True)
    latest = ma.fields.AwareDateTime(required=True)
    address = ma.fields.String(allow_none=True)
    location_approximate = ma.fields.Boolean(
        required=True,
        metadata={
            "description": "True when the point is only the centre of the postcode's "
            "district (the table knows no closer point, or the online geocoder was out of reach)"
        },
    )
    notes = ma.fields.String(allow_none=True)
    status = ma.fields.Enum(RequestStatus, by_value=True, required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    patient_id = ma.fields.UUID(required=True)
    created_by_id = ma.fields.UUID(
        allow_none=True, metadata={"description": "The patient, or their carer"}
    )
    withdrawn_by_id = ma.fields.UUID(allow_none=True)


class FeedItemSchema(ma.Schema):
    """What a practitioner sees of an open request: the area only, no notes, no name."""

    id = ma.fields.UUID(attribute="care_request.id", required=True)
    mode = ma.fields.Enum(Mode, by_value=True, attribute="care_request.mode", required=True)
    specialty = ma.fields.String(attribute="care_request.specialty", required=True)
    outcode = ma.fields.String(attribute="care_request.outcode", allow_none=True)
    earliest = ma.fields.AwareDateTime(attribute="care_request.earliest", required=True)
    latest = ma.fields.AwareDateTime(attribute="care_request.latest", required=True)
    distance_km = ma.fields.Float(allow_none=True)


FeedSchema = list_schema(FeedItemSchema, "OpenRequestFeed")


class MatchQuerySchema(InputSchema):
    limit = ma.fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class SlotOutSchema(ma.Schema):
    start = ma.fields.AwareDateTime(required=True)
    end = ma.fields.AwareDateTime(required=True)


class MatchSchema(ma.Schema):
    practitioner_id = ma.fields.UUID(attribute="practitioner.id", required=True)
    full_name = ma.fields.String(attribute="practitioner.full_name", required=True)
    profession = ma.fields.Enum(
        Profession, by_value=True, attribute="practitioner.profession", required=True
    )
    distance_km = ma.fields.Float(allow_none=True, required=True)
    score = ma.fields.Float(required=True)
    reasons = ma.fields.List(ma.fields.String(), required=True)
    next_slots = ma.fields.List(ma.fields.Nested(SlotOutSchema), required=True)


MatchListSchema = list_schema(MatchSchema, "MatchList")


class BookingInputSchema(StrictSchema):
    patient_id = acting_for_field()
    practitioner_id = ma.fields.UUID(required=True)
    start = ma.fields.AwareDateTime(required=True, validate=bounded_datetime)
    mode = ma.fields.Enum(Mode, by_value=True, required=True)
    request_id = ma.fields.UUID(load_default=None, allow_none=True)
    address = TrimmedString(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=500),
        metadata={
            "description": "Home visits: where to go (shown to the practitioner while "
            "the visit is confirmed)"
        },
    )
    postcode = TrimmedString(load_default=None, allow_none=True, validate=validate.Length(max=16))
    visit_type = ma.fields.Enum(
        VisitType,
        by_value=True,
        load_default=None,
        allow_none=True,
        metadata={
            "description": "Leave out: a first visit is an assessment, later ones "
            "follow-ups. `follow_up` before any assessment is 409 `assessment_required`"
        },
    )


class IdempotencyHeaderSchema(InputSchema):
    idempotency_key = ma.fields.String(
        data_key="Idempotency-Key",
        load_default=None,
        validate=validate.Regexp(
            r"^[\x21-\x7e]{1,200}$", error="Use 1 to 200 printable characters without spaces."
        ),
    )


class BookingListQuerySchema(PageQuerySchema):
    status = ma.fields.Enum(BookingStatus, by_value=True, load_default=None)


class CancelInputSchema(StrictSchema):
    reason = TrimmedString(load_default=None, allow_none=True, validate=validate.Length(max=1000))


class RescheduleInputSchema(StrictSchema):
    start = ma.fields.AwareDateTime(required=True, validate=bounded_datetime)


class ClaimInputSchema(StrictSchema):
    start = ma.fields.AwareDateTime(required=True, validate=bounded_datetime)


class BookingSchema(ma.Schema):
    """A booking as the viewer may see it: the address only for whom it is meant, the meeting
    link only for the two parties and admins."""

    id = ma.fields.UUID(required=True)
    practitioner_id = ma.fields.UUID(required=True)
    patient_id = ma.fields.UUID(required=True)
    request_id = ma.fields.UUID(allow_none=True)
    start = ma.fields.AwareDateTime(required=True)
    end = ma.fields.AwareDateTime(required=True)
    mode = ma.fields.Enum(Mode, by_value=True, required=True)
    visit_type = ma.fields.Enum(VisitType, by_value=True, required=True)
    status = ma.fields.Enum(BookingStatus, by_value=True, required=True)
    late_cancellation = ma.fields.Boolean(required=True)
    video_url = ma.fields.String(allow_none=True)
    address = ma.fields.String(allow_none=True)
    postcode = ma.fields.String(allow_none=True)
    booked_by_id = ma.fields.UUID(
        allow_none=True,
        metadata={"description": "Who booked: the patient, their carer or the practitioner"},
    )
    rescheduled_by_id = ma.fields.UUID(
        allow_none=True, metadata={"description": "Who moved it last"}
    )
    cancelled_by_id = ma.fields.UUID(allow_none=True)
    patient_name = ma.fields.String(allow_none=True)
    patient_phone = ma.fields.String(
        allow_none=True,
        metadata={"description": "To reach the patient: for the practitioner while confirmed"},
    )
    cancellation_code = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "Why the platform cancelled the visit: `practitioner_unavailable` "
            "when the practitioner's listing ended before it (a suspension or a lapsed "
            "credential); null when a party cancelled"
        },
    )


BookingListSchema = list_schema(BookingSchema, "BookingList")


class CourseInputSchema(StrictSchema):
    start = ma.fields.AwareDateTime(
        required=True,
        validate=bounded_datetime,
        metadata={"description": "The first session; the others follow weekly at that local time"},
    )
    weeks = ma.fields.Integer(strict=True, required=True, validate=validate.Range(min=2, max=26))
    mode = ma.fields.Enum(Mode, by_value=True, required=True)
    practitioner_id = ma.fields.UUID(
        load_default=None, allow_none=True, metadata={"description": "When a patient books"}
    )
    patient_id = ma.fields.UUID(
        load_default=None,
        allow_none=True,
        metadata={"description": "When a practitioner books, or a carer books for a patient"},
    )
    address = TrimmedString(load_default=None, allow_none=True, validate=validate.Length(max=500))
    postcode = TrimmedString(load_default=None, allow_none=True, validate=validate.Length(max=16))


class CourseSchema(ma.Schema):
    id = ma.fields.UUID(required=True)
    practitioner_id = ma.fields.UUID(required=True)
    patient_id = ma.fields.UUID(required=True)
    created_by_id = ma.fields.UUID(
        required=True, metadata={"description": "The patient, their carer or the practitioner"}
    )
    sessions = ma.fields.List(ma.fields.Nested(BookingSchema), required=True)
