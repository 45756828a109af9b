"""Reviews: a patient reviews a completed visit, the practitioner replies, admins hide, anyone
reads a listed practitioner's visible reviews."""

from __future__ import annotations

import uuid
from typing import Any

from marketplace.accounts.auth import authenticated, current_account
from marketplace.accounts.models import Role
from marketplace.clock import business_today
from marketplace.db import request_session, utcnow
from marketplace.errors import ErrorSchema
from marketplace.practitioners.listing import get_listed_practitioner
from marketplace.reviews import service
from marketplace.reviews.models import Review
from marketplace.reviews.schemas import (
    AdminReviewSchema,
    HideInputSchema,
    ReplyInputSchema,
    ReviewInputSchema,
    ReviewListSchema,
    ReviewQuerySchema,
    ReviewSchema,
)
from marketplace.schemas import ApiBlueprint

blp = ApiBlueprint("reviews", __name__, url_prefix="/api/v1", description="Verified reviews")


@blp.route("/bookings/<uuid:booking_id>/review", methods=["POST"])
@authenticated(Role.PATIENT)
@blp.arguments(ReviewInputSchema)
@blp.response(201, ReviewSchema)
@blp.alt_response(409, schema=ErrorSchema, description="Not completed, or reviewed already")
def review_visit(body: dict[str, Any], booking_id: uuid.UUID) -> Review:
    """Review your completed visit: 1-5 stars and an optional comment, once."""
    return service.review_visit(
        request_session(), current_account(), booking_id, body["rating"], body["comment"], utcnow()
    )


@blp.route("/reviews/<uuid:review_id>/reply", methods=["POST"])
@authenticated(Role.PRACTITIONER)
@blp.arguments(ReplyInputSchema)
@blp.response(200, ReviewSchema)
@blp.alt_response(409, schema=ErrorSchema, description="Replied already")
def reply_to_review(body: dict[str, Any], review_id: uuid.UUID) -> Review:
    """Reply once to a review of one of your visits."""
    return service.reply_to_review(
        request_session(), current_account(), review_id, body["reply"], utcnow()
    )


@blp.route("/admin/reviews/<uuid:review_id>/hide", methods=["POST"])
@authenticated(Role.ADMIN)
@blp.arguments(HideInputSchema)
@blp.response(200, AdminReviewSchema)
def hide_review(body: dict[str, Any], review_id: uuid.UUID) -> Review:
    """Hide a review from the public (the reason is kept; the audit log holds ids only)."""
    return service.hide_review(
        request_session(), current_account(), review_id, body["reason"], utcnow()
    )


@blp.route("/practitioners/<uuid:practitioner_id>/reviews", methods=["GET"])
@blp.arguments(ReviewQuerySchema, location="query")
@blp.response(200, ReviewListSchema)
def list_practitioner_reviews(query: dict[str, Any], practitioner_id: uuid.UUID) -> Any:
    """A listed practitioner's visible reviews, newest first."""
    session = request_session()
    get_listed_practitioner(session, practitioner_id, business_today())
    return service.visible_reviews(session, practitioner_id, query["limit"], query["cursor"])
