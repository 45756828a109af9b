"""Review input and the public view (no author: reviews are verified, not signed)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from marketplace.pagination import PageQuerySchema
from marketplace.reviews.models import RATING_RANGE, TEXT_LENGTH
from marketplace.schemas import StrictSchema, TrimmedString, list_schema


class ReviewInputSchema(StrictSchema):
    rating = ma.fields.Integer(strict=True, required=True, validate=validate.Range(*RATING_RANGE))
    comment = TrimmedString(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=TEXT_LENGTH),
        metadata={"description": "Optional; no health details are needed"},
    )


class ReplyInputSchema(StrictSchema):
    reply = TrimmedString(required=True, validate=validate.Length(min=1, max=TEXT_LENGTH))


class HideInputSchema(StrictSchema):
    reason = TrimmedString(required=True, validate=validate.Length(min=1, max=2000))


class ReviewSchema(ma.Schema):
    id = ma.fields.UUID(required=True)
    rating = ma.fields.Integer(required=True)
    comment = ma.fields.String(allow_none=True)
    created_at = ma.fields.AwareDateTime(required=True)
    reply = ma.fields.String(allow_none=True)
    replied_at = ma.fields.AwareDateTime(allow_none=True)


class AdminReviewSchema(ReviewSchema):
    booking_id = ma.fields.UUID(required=True)
    hidden_at = ma.fields.AwareDateTime(allow_none=True)


class RatingSchema(ma.Schema):
    average = ma.fields.Float(allow_none=True, required=True)
    count = ma.fields.Integer(required=True)


ReviewListSchema = list_schema(ReviewSchema, "ReviewList")
ReviewQuerySchema = PageQuerySchema
