"""Practitioner endpoints: the vocabulary, own profile, credentials, availability, public views."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, cast

from flask import Response, current_app
from flask_login import current_user
from sqlalchemy.orm import Session

from marketplace.accounts.acting_for import patient_for
from marketplace.accounts.auth import authenticated, current_account
from marketplace.accounts.models import Role, User
from marketplace.booking.slots import public_slots, visit_type_for
from marketplace.clock import business_today
from marketplace.db import request_session, utcnow
from marketplace.errors import ErrorSchema, NotFound
from marketplace.geo.geocoding import geocoder_from_config
from marketplace.http_guards import accepts_multipart, allow_body_up_to
from marketplace.practitioners import service
from marketplace.practitioners.evidence import MAX_EVIDENCE_BYTES
from marketplace.practitioners.evidence_download import send_evidence
from marketplace.practitioners.models import Evidence, Mode, Practitioner, Profession
from marketplace.practitioners.schemas import (
    AvailabilityInputSchema,
    AvailabilitySchema,
    CredentialInputSchema,
    CredentialSchema,
    EvidenceSchema,
    EvidenceUploadSchema,
    ProfileInputSchema,
    ProfileSchema,
    PublicProfileSchema,
    SlotListSchema,
    SlotsQuerySchema,
    SpecialtyListSchema,
)
from marketplace.practitioners.vocabulary import SPECIALTIES
from marketplace.reviews import service as reviews
from marketplace.schemas import ApiBlueprint
from marketplace.storage import evidence_store

blp = ApiBlueprint(
    "practitioners", __name__, url_prefix="/api/v1", description="Practitioners and vocabulary"
)
DEFAULT_SLOT_DAYS = 14
UPLOAD_OVERHEAD = 64 * 1024  # multipart headers around the file


@blp.route("/specialties", methods=["GET"])
@blp.response(200, SpecialtyListSchema)
def list_specialties() -> dict[str, Any]:
    """The controlled vocabulary of conditions and techniques (slugs are stable)."""
    return {"items": SPECIALTIES, "next_cursor": None}


@blp.route("/practitioners/me", methods=["PUT"])
@authenticated(Role.PRACTITIONER)
@blp.arguments(ProfileInputSchema)
@blp.response(200, ProfileSchema)
def save_my_profile(body: dict[str, Any]) -> Practitioner:
    """Create or replace your practitioner profile."""
    data = service.ProfileInput(
        profession=Profession(body["profession"]),
        bio=body["bio"] or "",
        specialties=body["specialties"],
        modes=[Mode(mode) for mode in body["modes"]],
        base_postcode=body["base_postcode"],
        travel_radius_km=body["travel_radius_km"],
        session_minutes=body["session_minutes"],
        price_pence=body["price_pence"],
        languages=body["languages"],
        assessment_minutes=body["assessment_minutes"],
        assessment_price_pence=body["assessment_price_pence"],
    )
    return service.save_profile(
        request_session(),
        current_account(),
        data,
        business_today(),
        geocoder_from_config(current_app.config),
    )


@blp.route("/practitioners/me", methods=["GET"])
@authenticated(Role.PRACTITIONER)
@blp.response(200, ProfileSchema)
@blp.alt_response(404, schema=ErrorSchema, description="No profile yet")
def get_my_profile() -> Practitioner:
    """Your profile with your credentials and listing status."""
    return service.get_own_profile(request_session(), current_account())


@blp.route("/practitioners/me/credentials", methods=["POST"])
@authenticated(Role.PRACTITIONER)
@blp.arguments(CredentialInputSchema)
@blp.response(201, CredentialSchema)
@blp.alt_response(409, schema=ErrorSchema, description="Number held elsewhere / no profile")
def submit_credential(body: dict[str, Any]) -> Any:
    """Submit an HCPC registration or an NMT certificate for verification."""
    return service.submit_credential(request_session(), current_account(), body, business_today())


@blp.route("/practitioners/me/credentials/<uuid:credential_id>/evidence", methods=["POST"])
@authenticated(Role.PRACTITIONER)
@allow_body_up_to(MAX_EVIDENCE_BYTES + UPLOAD_OVERHEAD)
@accepts_multipart
@blp.arguments(EvidenceUploadSchema, location="files")
@blp.response(201, EvidenceSchema)
@blp.alt_response(413, schema=ErrorSchema, description="Over 10 MB")
@blp.alt_response(
    422,
    schema=ErrorSchema,
    description="Not a PDF, PNG or JPEG (`validation_failed`); one that does not parse whole "
    "(`evidence_unreadable`); a PDF with JavaScript, embedded files, launch actions or XFA "
    "(`evidence_unsafe`); too many pages, objects or pixels (`evidence_too_complex`)",
)
@blp.alt_response(503, schema=ErrorSchema, description="`storage_unavailable`")
def upload_evidence(files: dict[str, Any], credential_id: uuid.UUID) -> Evidence:
    """Upload evidence (PDF, PNG or JPEG, checked by content, at most 10 MB)."""
    return service.add_evidence(
        request_session(), current_account(), credential_id, files["file"].stream, evidence_store()
    )


@blp.route(
    "/practitioners/me/credentials/<uuid:credential_id>/evidence/<uuid:evidence_id>",
    methods=["GET"],
)
@authenticated(Role.PRACTITIONER)
@blp.response(200, content_type="application/octet-stream")
@blp.alt_response(503, schema=ErrorSchema, description="`storage_unavailable`")
def download_own_evidence(credential_id: uuid.UUID, evidence_id: uuid.UUID) -> Response:
    """Download evidence you uploaded."""
    evidence = service.open_evidence(
        request_session(), current_account(), credential_id, evidence_id
    )
    return send_evidence(evidence)


@blp.route("/practitioners/me/availability", methods=["PUT"])
@authenticated(Role.PRACTITIONER)
@blp.arguments(AvailabilityInputSchema)
@blp.response(200, AvailabilitySchema)
def set_availability(body: dict[str, Any]) -> Practitioner:
    """Replace your weekly hours, date exceptions and booking settings."""
    return service.set_availability(request_session(), current_account(), body)


@blp.route("/practitioners/me/availability", methods=["GET"])
@authenticated(Role.PRACTITIONER)
@blp.response(200, AvailabilitySchema)
def get_availability() -> Practitioner:
    """Your weekly hours, date exceptions and booking settings."""
    return service.get_own_profile(request_session(), current_account())


@blp.route("/practitioners/<uuid:practitioner_id>", methods=["GET"])
@blp.response(200, PublicProfileSchema)
@blp.alt_response(404, schema=ErrorSchema, description="Not listed")
def get_practitioner(practitioner_id: uuid.UUID) -> dict[str, Any]:
    """A listed practitioner's public profile, with their rating and recent reviews."""
    session = request_session()
    profile = service.public_profile(session, practitioner_id, business_today())
    recent = reviews.visible_reviews(session, practitioner_id, reviews.RECENT, None).items
    return profile | {
        "rating": reviews.rating_summary(session, practitioner_id),
        "recent_reviews": recent,
    }


def _patient_id(session: Session, acting_for: uuid.UUID | None) -> uuid.UUID | None:
    """The signed-in patient, or the patient a signed-in carer asks for, if any (slots are
    public; `acting_for` someone you may not act for is a 404)."""
    if not (current_user.is_authenticated and current_user.role is Role.PATIENT):
        if acting_for is not None:
            raise NotFound("No such patient of yours.", code="not_your_patient")
        return None
    return patient_for(session, cast(User, current_user), acting_for).id


@blp.route("/practitioners/<uuid:practitioner_id>/slots", methods=["GET"])
@blp.arguments(SlotsQuerySchema, location="query")
@blp.response(200, SlotListSchema)
def list_slots(query: dict[str, Any], practitioner_id: uuid.UUID) -> dict[str, Any]:
    """Free session-length slots of a listed practitioner (default: the next 14 days)."""
    now = utcnow()
    start = query["start"] or now
    end = query["end"] or start + timedelta(days=DEFAULT_SLOT_DAYS)
    session = request_session()
    visit_type = query["visit_type"] or visit_type_for(
        session, _patient_id(session, query["patient_id"]), practitioner_id, start
    )
    found = public_slots(
        session, practitioner_id, start, end, query["mode"], now, business_today(now), visit_type
    )
    items = [{"start": s.start, "end": s.end, "modes": sorted(s.modes)} for s in found]
    return {"items": items, "next_cursor": None}
