"""Care request endpoints: create, read, withdraw, matches, and the practitioners' feed."""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app

from marketplace.accounts.auth import authenticated, current_account
from marketplace.accounts.models import Role
from marketplace.booking import bookings, care_requests
from marketplace.booking.models import CareRequest
from marketplace.booking.presenters import booking_policy, shown
from marketplace.booking.schemas import (
    BookingSchema,
    CareRequestInputSchema,
    CareRequestSchema,
    ClaimInputSchema,
    FeedSchema,
    MatchListSchema,
    MatchQuerySchema,
)
from marketplace.clock import business_today
from marketplace.db import request_session, utcnow
from marketplace.errors import ErrorSchema
from marketplace.geo.geocoding import geocoder_from_config
from marketplace.matching.service import match_practitioners
from marketplace.practitioners.service import get_own_profile
from marketplace.schemas import ApiBlueprint

blp = ApiBlueprint("requests", __name__, url_prefix="/api/v1", description="Care requests")


@blp.route("/requests", methods=["POST"])
@authenticated(Role.PATIENT)
@blp.arguments(CareRequestInputSchema)
@blp.response(201, CareRequestSchema)
def create_request(body: dict[str, Any]) -> CareRequest:
    """Describe what you need: mode, specialty, where (home visits) and when."""
    return care_requests.create_request(
        request_session(),
        current_account(),
        body,
        geocoder_from_config(current_app.config),
        utcnow(),
    )


@blp.route("/requests/<uuid:request_id>", methods=["GET"])
@authenticated()
@blp.response(200, CareRequestSchema)
@blp.alt_response(404, schema=ErrorSchema, description="Not found or not yours")
def get_request(request_id: uuid.UUID) -> CareRequest:
    """A request, for its patient (or their carer), an admin, or the practitioner of a visit
    booked from it while that visit is confirmed."""
    return care_requests.get_request(request_session(), current_account(), request_id)


@blp.route("/requests/<uuid:request_id>/withdraw", methods=["POST"])
@authenticated(Role.PATIENT)
@blp.response(200, CareRequestSchema)
@blp.alt_response(409, schema=ErrorSchema, description="No longer open")
def withdraw_request(request_id: uuid.UUID) -> CareRequest:
    """Withdraw your open request."""
    return care_requests.withdraw_request(request_session(), current_account(), request_id)


@blp.route("/requests/<uuid:request_id>/matches", methods=["GET"])
@authenticated(Role.PATIENT)
@blp.arguments(MatchQuerySchema, location="query")
@blp.response(200, MatchListSchema)
def list_matches(query: dict[str, Any], request_id: uuid.UUID) -> dict[str, Any]:
    """Practitioners who fit your request, best first, with reasons and their next free slots."""
    session = request_session()
    care_request = care_requests.own_request(session, current_account(), request_id)
    now = utcnow()
    found = match_practitioners(
        session, care_request, now=now, today=business_today(now), limit=query["limit"]
    )
    return {"items": found, "next_cursor": None}


@blp.route("/practitioners/me/open-requests", methods=["GET"])
@authenticated(Role.PRACTITIONER)
@blp.response(200, FeedSchema)
@blp.alt_response(403, schema=ErrorSchema, description="Not listed")
def list_open_requests() -> dict[str, Any]:
    """Open requests you fit (the area only: no notes, no names)."""
    session = request_session()
    now = utcnow()
    today = business_today(now)
    profile = get_own_profile(session, current_account())
    return {
        "items": care_requests.open_requests_for(session, profile, now, today),
        "next_cursor": None,
    }


@blp.route("/requests/<uuid:request_id>/claim", methods=["POST"])
@authenticated(Role.PRACTITIONER)
@blp.arguments(ClaimInputSchema)
@blp.response(201, BookingSchema)
@blp.alt_response(409, schema=ErrorSchema, description="Already taken, or the slot is not free")
def claim_request(body: dict[str, Any], request_id: uuid.UUID) -> dict[str, Any]:
    """Take an open request you fit, at a start inside its window: the first claim wins."""
    now = utcnow()
    booking = bookings.claim_request(
        request_session(),
        current_account(),
        request_id,
        body["start"],
        now=now,
        today=business_today(now),
        policy=booking_policy(),
    )
    return shown(booking)
