"""Request and response shapes of the practitioner endpoints."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest.fields import Upload
from marshmallow import validate

from marketplace.practitioners.models import (
    DEFAULT_ASSESSMENT_MINUTES,
    MAX_BUFFER_MINUTES,
    MAX_TRAVEL_BUFFER_MINUTES,
    CredentialKind,
    ListingStatus,
    Mode,
    Profession,
    VisitType,
)
from marketplace.practitioners.vocabulary import SpecialtyKind
from marketplace.reviews.schemas import RatingSchema, ReviewSchema
from marketplace.schemas import (
    InputSchema,
    StrictSchema,
    TrimmedString,
    bounded_datetime,
    list_schema,
)

_MODES = [mode.value for mode in Mode]
_HH_MM = "%H:%M"


def _modes_field(**options: Any) -> ma.fields.Field[Any]:
    return ma.fields.List(
        ma.fields.String(validate=validate.OneOf(_MODES)),
        validate=validate.Length(min=1, max=2),
        **options,
    )


def _multiple_of_15(value: int) -> None:
    if value % 15:
        raise ma.ValidationError("Use a multiple of 15 minutes.")


class SpecialtySchema(ma.Schema):
    slug = ma.fields.String(required=True)
    label = ma.fields.String(required=True)
    kind = ma.fields.Enum(SpecialtyKind, by_value=True, required=True)


SpecialtyListSchema = list_schema(SpecialtySchema, "SpecialtyList")


class ProfileInputSchema(StrictSchema):
    profession = ma.fields.Enum(Profession, by_value=True, required=True)
    bio = TrimmedString(load_default="", validate=validate.Length(max=4000))
    specialties = ma.fields.List(
        ma.fields.String(validate=validate.Length(max=40)),
        required=True,
        validate=validate.Length(max=30),
    )
    modes = _modes_field(required=True)
    base_postcode = TrimmedString(
        load_default=None, allow_none=True, validate=validate.Length(max=16)
    )
    travel_radius_km = ma.fields.Integer(
        strict=True, load_default=None, allow_none=True, validate=validate.Range(min=1, max=80)
    )
    session_minutes = ma.fields.Integer(
        strict=True, required=True, validate=[validate.Range(min=30, max=120), _multiple_of_15]
    )
    price_pence = ma.fields.Integer(
        strict=True, required=True, validate=validate.Range(min=1, max=100_000)
    )
    assessment_minutes = ma.fields.Integer(
        strict=True,
        load_default=DEFAULT_ASSESSMENT_MINUTES,
        validate=[validate.Range(min=30, max=180), _multiple_of_15],
        metadata={"description": "The first visit with a new patient (default 75 minutes)"},
    )
    assessment_price_pence = ma.fields.Integer(
        strict=True,
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=1, max=100_000),
        metadata={"description": "Default: the session price"},
    )
    languages = ma.fields.List(
        ma.fields.String(validate=validate.Regexp(r"^[a-z]{2,3}$", error="Use an ISO 639 code.")),
        load_default=lambda: ["en"],
        validate=validate.Length(max=20),
    )


class EvidenceSchema(ma.Schema):
    id = ma.fields.UUID(required=True)
    content_type = ma.fields.String(required=True)
    size_bytes = ma.fields.Integer(required=True)
    sha256 = ma.fields.String(required=True)
    uploaded_at = ma.fields.AwareDateTime(required=True)


class CredentialInputSchema(StrictSchema):
    kind = ma.fields.Enum(CredentialKind, by_value=True, required=True)
    number = TrimmedString(required=True, validate=validate.Length(min=1, max=40))
    issuer = TrimmedString(load_default=None, allow_none=True, validate=validate.Length(max=200))
    programme = TrimmedString(load_default=None, allow_none=True, validate=validate.Length(max=200))
    training_hours = ma.fields.Integer(
        strict=True, load_default=None, allow_none=True, validate=validate.Range(min=0, max=100_000)
    )
    issued_on = ma.fields.Date(load_default=None, allow_none=True)
    expires_on = ma.fields.Date(load_default=None, allow_none=True)


class CredentialSchema(ma.Schema):
    id = ma.fields.UUID(required=True)
    kind = ma.fields.Enum(CredentialKind, by_value=True, required=True)
    number = ma.fields.String(required=True)
    issuer = ma.fields.String(allow_none=True)
    programme = ma.fields.String(allow_none=True)
    training_hours = ma.fields.Integer(allow_none=True)
    issued_on = ma.fields.Date(allow_none=True)
    expires_on = ma.fields.Date(allow_none=True)
    status = ma.fields.String(required=True)
    submitted_at = ma.fields.AwareDateTime(required=True)
    decided_at = ma.fields.AwareDateTime(allow_none=True)
    decision_reason = ma.fields.String(allow_none=True)
    evidence = ma.fields.List(ma.fields.Nested(EvidenceSchema), required=True)


class EvidenceUploadSchema(ma.Schema):
    file = Upload(required=True, metadata={"description": "A PDF, PNG or JPEG of at most 10 MB"})


class ProfileSchema(ma.Schema):
    id = ma.fields.UUID(required=True)
    full_name = ma.fields.String(attribute="user.full_name", required=True)
    profession = ma.fields.Enum(Profession, by_value=True, required=True)
    bio = ma.fields.String(required=True)
    specialties = ma.fields.List(ma.fields.String(), attribute="specialty_slugs", required=True)
    modes = ma.fields.List(ma.fields.Enum(Mode, by_value=True), required=True)
    base_postcode = ma.fields.String(allow_none=True)
    travel_radius_km = ma.fields.Integer(allow_none=True)
    session_minutes = ma.fields.Integer(required=True)
    price_pence = ma.fields.Integer(required=True)
    assessment_minutes = ma.fields.Integer(required=True)
    assessment_price_pence = ma.fields.Integer(required=True)
    languages = ma.fields.List(ma.fields.String(), required=True)
    timezone = ma.fields.String(required=True)
    status = ma.fields.Enum(ListingStatus, by_value=True, required=True)
    status_reason = ma.fields.String(allow_none=True)
    listed_until = ma.fields.Date(allow_none=True)
    credentials = ma.fields.List(ma.fields.Nested(CredentialSchema), required=True)


class PublicProfileSchema(ma.Schema):
    """What anyone may see of a listed practitioner: no full postcode, no credentials' details."""

    id = ma.fields.UUID(required=True)
    full_name = ma.fields.String(attribute="user.full_name", required=True)
    profession = ma.fields.Enum(Profession, by_value=True, required=True)
    bio = ma.fields.String(required=True)
    specialties = ma.fields.List(ma.fields.Nested(SpecialtySchema), required=True)
    modes = ma.fields.List(ma.fields.Enum(Mode, by_value=True), required=True)
    area = ma.fields.String(allow_none=True, metadata={"description": "Outward code of the base"})
    travel_radius_km = ma.fields.Integer(allow_none=True)
    session_minutes = ma.fields.Integer(required=True)
    price_pence = ma.fields.Integer(required=True)
    assessment_minutes = ma.fields.Integer(required=True)
    assessment_price_pence = ma.fields.Integer(required=True)
    languages = ma.fields.List(ma.fields.String(), required=True)
    verified_until = ma.fields.Date(attribute="listed_until", allow_none=True)
    rating = ma.fields.Nested(RatingSchema, required=True)
    recent_reviews = ma.fields.List(ma.fields.Nested(ReviewSchema), required=True)


class OpeningSchema(StrictSchema):
    start = ma.fields.Time(format=_HH_MM, required=True)
    end = ma.fields.Time(format=_HH_MM, required=True)
    modes = _modes_field(load_default=lambda: list(_MODES))


class WeeklyRuleSchema(OpeningSchema):
    weekday = ma.fields.Integer(
        strict=True,
        required=True,
        validate=validate.Range(min=0, max=6),
        metadata={"description": "Mon=0"},
    )


class ExceptionSchema(OpeningSchema):
    """A day off (`available: false`) or that date's own hours."""

    date = ma.fields.Date(required=True)
    available = ma.fields.Boolean(load_default=True)
    start = ma.fields.Time(format=_HH_MM, load_default=None, allow_none=True)
    end = ma.fields.Time(format=_HH_MM, load_default=None, allow_none=True)

    @ma.validates_schema
    def hours_match_availability(self, data: dict[str, Any], **_: Any) -> None:
        has_hours = data.get("start") is not None and data.get("end") is not None
        if data["available"] and not has_hours:
            raise ma.ValidationError("Give start and end, or available: false for a day off.")
        if not data["available"] and (data.get("start") or data.get("end")):
            raise ma.ValidationError("A day off has no hours.")


class AvailabilityInputSchema(StrictSchema):
    timezone = ma.fields.String(load_default="Europe/London", validate=validate.Length(max=64))
    weekly = ma.fields.List(
        ma.fields.Nested(WeeklyRuleSchema), required=True, validate=validate.Length(max=70)
    )
    exceptions = ma.fields.List(
        ma.fields.Nested(ExceptionSchema), load_default=list, validate=validate.Length(max=400)
    )
    min_notice_hours = ma.fields.Integer(
        strict=True, load_default=None, validate=validate.Range(min=0, max=336)
    )
    horizon_days = ma.fields.Integer(
        strict=True, load_default=None, validate=validate.Range(min=1, max=365)
    )
    buffer_minutes = ma.fields.Integer(
        strict=True, load_default=None, validate=validate.Range(min=0, max=MAX_BUFFER_MINUTES)
    )
    travel_buffer_minutes = ma.fields.Integer(
        strict=True,
        load_default=None,
        validate=validate.Range(min=0, max=MAX_TRAVEL_BUFFER_MINUTES),
    )


class WeeklyRuleOutSchema(ma.Schema):
    weekday = ma.fields.Integer(required=True)
    start = ma.fields.Time(format=_HH_MM, attribute="start_time", required=True)
    end = ma.fields.Time(format=_HH_MM, attribute="end_time", required=True)
    modes = ma.fields.List(ma.fields.String(), required=True)


class ExceptionOutSchema(ma.Schema):
    date = ma.fields.Date(attribute="on_date", required=True)
    available = ma.fields.Boolean(required=True)
    start = ma.fields.Time(format=_HH_MM, attribute="start_time", allow_none=True)
    end = ma.fields.Time(format=_HH_MM, attribute="end_time", allow_none=True)
    modes = ma.fields.List(ma.fields.String(), required=True)


class AvailabilitySchema(ma.Schema):
    timezone = ma.fields.String(required=True)
    weekly = ma.fields.List(
        ma.fields.Nested(WeeklyRuleOutSchema), attribute="weekly_rules", required=True
    )
    exceptions = ma.fields.List(ma.fields.Nested(ExceptionOutSchema), required=True)
    min_notice_hours = ma.fields.Integer(required=True)
    horizon_days = ma.fields.Integer(required=True)
    buffer_minutes = ma.fields.Integer(required=True)
    travel_buffer_minutes = ma.fields.Integer(required=True)


class SlotsQuerySchema(InputSchema):
    start = ma.fields.AwareDateTime(data_key="from", load_default=None, validate=bounded_datetime)
    end = ma.fields.AwareDateTime(data_key="to", load_default=None, validate=bounded_datetime)
    mode = ma.fields.String(load_default=None, validate=validate.OneOf(_MODES))
    visit_type = ma.fields.Enum(
        VisitType,
        by_value=True,
        load_default=None,
        metadata={
            "description": "Slot length: default the caller's next visit (an assessment "
            "unless a signed-in patient has had one)"
        },
    )
    patient_id = ma.fields.UUID(
        load_default=None,
        metadata={
            "description": "A signed-in carer: the patient whose next visit sets the default length"
        },
    )


class SlotSchema(ma.Schema):
    start = ma.fields.AwareDateTime(required=True)
    end = ma.fields.AwareDateTime(required=True)
    modes = ma.fields.List(ma.fields.String(), required=True)


SlotListSchema = list_schema(SlotSchema, "SlotList")
