"""Carers: a patient invites, lists and revokes carers; the invited person accepts, lists the
patients they help and can step down. Acting for a patient happens on the ordinary endpoints,
with the patient's id (`patient_id`) where something new is made."""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app

from marketplace.accounts.auth import authenticated, current_account
from marketplace.accounts.models import CarerGrant, Role, User
from marketplace.caregivers import service
from marketplace.caregivers.schemas import (
    AcceptInputSchema,
    CaredForListSchema,
    CaredForSchema,
    CarerGrantListSchema,
    CarerGrantSchema,
    InviteInputSchema,
)
from marketplace.db import request_session, utcnow
from marketplace.errors import ErrorSchema
from marketplace.extensions import limiter
from marketplace.schemas import ApiBlueprint

blp = ApiBlueprint("carers", __name__, url_prefix="/api/v1", description="Carers")


def _name(user_id: uuid.UUID | None) -> str | None:
    user = request_session().get(User, user_id) if user_id else None
    return user.full_name if user else None


def patients_view(grant: CarerGrant) -> dict[str, Any]:
    return {
        "id": grant.id,
        "email": grant.email,
        "state": grant.state_at(utcnow()),
        "carer_id": grant.carer_id,
        "carer_name": _name(grant.carer_id),
        "invited_at": grant.invited_at,
        "expires_at": grant.expires_at,
        "accepted_at": grant.accepted_at,
        "revoked_at": grant.revoked_at,
        "revoked_by_id": grant.revoked_by_id,
    }


def carers_view(grant: CarerGrant) -> dict[str, Any]:
    return {
        "id": grant.id,
        "patient_id": grant.patient_id,
        "patient_name": _name(grant.patient_id),
        "state": grant.state_at(utcnow()),
        "accepted_at": grant.accepted_at,
        "revoked_at": grant.revoked_at,
    }


@blp.route("/me/carers", methods=["GET"])
@authenticated(Role.PATIENT)
@blp.response(200, CarerGrantListSchema)
def list_carers() -> dict[str, Any]:
    """Your carers and invitations, newest first (ended ones too)."""
    grants = service.grants_of_patient(request_session(), current_account())
    return {"items": [patients_view(grant) for grant in grants], "next_cursor": None}


@blp.route("/me/carers", methods=["POST"])
@authenticated(Role.PATIENT)
@limiter.limit(
    lambda: current_app.config["RATELIMIT_CARER_INVITES"], key_func=lambda: current_account().id.hex
)
@blp.arguments(InviteInputSchema)
@blp.response(201, CarerGrantSchema)
@blp.alt_response(409, schema=ErrorSchema, description="`already_invited` or `too_many_carers`")
def invite_carer(body: dict[str, Any]) -> dict[str, Any]:
    """Invite a family member or carer by email: they get a code to accept with, valid for 7
    days. Once they accept, they can do for you what you can do with requests, bookings,
    courses and reviews, and they get your visit messages."""
    invitation = service.invite_carer(request_session(), current_account(), body["email"], utcnow())
    return patients_view(invitation.grant)


@blp.route("/carers/<uuid:grant_id>/revoke", methods=["POST"])
@authenticated(Role.PATIENT)
@blp.response(200, CarerGrantSchema)
@blp.alt_response(409, schema=ErrorSchema, description="Ended already")
def revoke_carer(grant_id: uuid.UUID) -> dict[str, Any]:
    """End it at once: the patient revokes an invitation or a carer, or the carer steps down."""
    grant = service.end_grant(request_session(), current_account(), grant_id, utcnow())
    return patients_view(grant)


@blp.route("/carers/accept", methods=["POST"])
@authenticated(Role.PATIENT)
@blp.arguments(AcceptInputSchema)
@blp.response(200, CaredForSchema)
@blp.alt_response(403, schema=ErrorSchema, description="Signed in with another address")
@blp.alt_response(404, schema=ErrorSchema, description="Wrong, used, revoked or expired code")
def accept_carer_invitation(body: dict[str, Any]) -> dict[str, Any]:
    """Accept an invitation, signed in with the address it was sent to."""
    grant = service.accept_invitation(request_session(), current_account(), body["code"], utcnow())
    return carers_view(grant)


@blp.route("/me/caring-for", methods=["GET"])
@authenticated(Role.PATIENT)
@blp.response(200, CaredForListSchema)
def list_caring_for() -> dict[str, Any]:
    """The patients you are a carer for: use their id as `patient_id` to act for them."""
    grants = service.grants_held(request_session(), current_account())
    return {"items": [carers_view(grant) for grant in grants], "next_cursor": None}
