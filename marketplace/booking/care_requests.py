"""Care requests: create, read, withdraw, expire, and the practitioners' feed.

Every function takes a session, may flush, and never commits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from marketplace.accounts.acting_for import acts_for, patient_for
from marketplace.accounts.models import Role, User
from marketplace.audit.service import record_audit
from marketplace.booking.models import Booking, BookingStatus, CareRequest, RequestStatus
from marketplace.booking.slots import free_slots_of
from marketplace.errors import Conflict, NotFound, ValidationFailed
from marketplace.geo.geocoding import Geocoder, geocode
from marketplace.geo.geometry import bounding_box, distance_km
from marketplace.geo.models import PostcodeCentroid
from marketplace.geo.postcodes import is_outward_code, outward_code
from marketplace.practitioners.listing import require_listed
from marketplace.practitioners.models import Mode, Practitioner
from marketplace.practitioners.vocabulary import SPECIALTY_SLUGS

MAX_WINDOW = timedelta(days=60)
# A client that sends "now" as the window's start sends a moment already past when it arrives.
CLOCK_LEEWAY = timedelta(minutes=5)
# Great Britain and Northern Ireland, generously: a point outside is a typo, not a patient.
UK_LATITUDES = (49.8, 60.9)
UK_LONGITUDES = (-8.7, 1.8)


class RequestNotOpen(Conflict):
    code = "request_not_open"
    message = "This request is no longer open."


@dataclass(frozen=True)
class FeedItem:
    """An open request as a practitioner sees it. The distance is rounded to whole kilometres:
    exact distances from a few base postcodes would pinpoint the patient's home."""

    care_request: CareRequest
    distance_km: float | None


def _check_window(earliest: datetime, latest: datetime, now: datetime) -> None:
    problems: dict[str, list[str]] = {}
    if latest <= earliest:
        problems["latest"] = ["The window must end after it starts."]
    elif latest - earliest > MAX_WINDOW:
        problems["latest"] = ["Ask for a window of at most 60 days."]
    if latest <= now:
        problems.setdefault("latest", []).append("The window has already passed.")
    if earliest < now - CLOCK_LEEWAY:
        problems["earliest"] = ["The window cannot start in the past."]
    if problems:
        raise ValidationFailed(details={"fields": problems})


def _nearest_outcode(session: Session, latitude: float, longitude: float) -> str | None:
    """The outward code whose centroid is nearest a point (for the feed, which shows areas)."""
    box = bounding_box(latitude, longitude, 15)
    rows = session.execute(
        select(PostcodeCentroid.code, PostcodeCentroid.latitude, PostcodeCentroid.longitude)
        .where(PostcodeCentroid.latitude.between(box.min_latitude, box.max_latitude))
        .where(PostcodeCentroid.longitude.between(box.min_longitude, box.max_longitude))
    ).all()
    outcodes = [row for row in rows if is_outward_code(row.code)]
    if not outcodes:
        return None
    nearest = min(outcodes, key=lambda r: distance_km(latitude, longitude, r.latitude, r.longitude))
    return str(nearest.code)


def _home_address(fields: dict[str, Any]) -> str | None:
    """The address to visit: required for a home visit (the practitioner who takes the request
    must know where to go), not kept for a video call."""
    if fields["mode"] is not Mode.HOME:
        return None
    if not fields.get("address"):
        raise ValidationFailed.for_field("address", "A home visit needs the address to visit.")
    address: str = fields["address"]
    return address


def _place(
    session: Session, geocoder: Geocoder, fields: dict[str, Any]
) -> tuple[str | None, str | None, float | None, float | None, bool]:
    """Postcode, outcode and point of a request, from the postcode or from the coordinates, and
    whether the point is only approximate."""
    if fields.get("postcode"):
        postcode, point = geocode(session, geocoder, fields["postcode"])
        return postcode, outward_code(postcode), point.latitude, point.longitude, point.approximate
    latitude, longitude = fields.get("latitude"), fields.get("longitude")
    if latitude is None or longitude is None:
        if fields["mode"] is Mode.HOME:
            raise ValidationFailed.for_field(
                "postcode", "A home visit needs a postcode (or latitude and longitude)."
            )
        return None, None, None, None, False
    if not (UK_LATITUDES[0] <= latitude <= UK_LATITUDES[1]) or not (
        UK_LONGITUDES[0] <= longitude <= UK_LONGITUDES[1]
    ):
        raise ValidationFailed.for_field("latitude", "This point is not in the UK.")
    return None, _nearest_outcode(session, latitude, longitude), latitude, longitude, False


def create_request(
    session: Session, actor: User, fields: dict[str, Any], geocoder: Geocoder, now: datetime
) -> CareRequest:
    """A request of the actor's, or (`patient_id`) of a patient they are a carer of."""
    patient = patient_for(session, actor, fields.get("patient_id"))
    if fields["specialty"] not in SPECIALTY_SLUGS:
        raise ValidationFailed(
            details={
                "fields": {"specialty": [f"Unknown specialty: {fields['specialty']}."]},
                "allowed": list(SPECIALTY_SLUGS),
            }
        )
    _check_window(fields["earliest"], fields["latest"], now)
    address = _home_address(fields)
    postcode, outcode, latitude, longitude, approximate = _place(session, geocoder, fields)
    care_request = CareRequest(
        patient_id=patient.id,
        mode=fields["mode"],
        specialty=fields["specialty"],
        postcode=postcode,
        outcode=outcode,
        latitude=latitude,
        longitude=longitude,
        earliest=fields["earliest"],
        latest=fields["latest"],
        notes=fields.get("notes"),
        address=address,
        location_approximate=approximate,
        created_by_id=actor.id,
    )
    session.add(care_request)
    session.flush()
    return care_request


def get_request(session: Session, viewer: User, request_id: uuid.UUID) -> CareRequest:
    """The request for its patient (or their carer), an admin, or the practitioner of a visit
    booked from it while that visit is confirmed; anyone else is told it does not exist."""
    if viewer.role is Role.PRACTITIONER:
        return _request_behind_confirmed_visit(session, viewer, request_id)
    if viewer.role is not Role.ADMIN:
        return own_request(session, viewer, request_id)
    care_request = session.get(CareRequest, request_id)
    if care_request is None:
        raise NotFound("No such request.")
    # Health notes read by staff: on the record, like evidence.
    record_audit(
        session,
        actor_id=viewer.id,
        action="care_request.viewed",
        subject_type="care_request",
        subject_id=care_request.id,
    )
    return care_request


def _request_behind_confirmed_visit(
    session: Session, practitioner_user: User, request_id: uuid.UUID
) -> CareRequest:
    """The handover: the practitioner a request was booked with reads it (the notes, the
    address) while the visit is confirmed; not before it is booked, nor once it is cancelled."""
    care_request = session.scalar(
        select(CareRequest)
        .join(Booking, Booking.request_id == CareRequest.id)
        .join(Practitioner, Practitioner.id == Booking.practitioner_id)
        .where(
            CareRequest.id == request_id,
            Practitioner.user_id == practitioner_user.id,
            Booking.status == BookingStatus.CONFIRMED,
        )
    )
    if care_request is None:
        raise NotFound("No such request.")
    return care_request


def own_request(session: Session, actor: User, request_id: uuid.UUID) -> CareRequest:
    """A request of the actor's, or of a patient they are a carer of."""
    care_request = session.get(CareRequest, request_id)
    if care_request is None or not acts_for(session, actor, care_request.patient_id):
        raise NotFound("No such request.")
    return care_request


def withdraw_request(session: Session, actor: User, request_id: uuid.UUID) -> CareRequest:
    care_request = own_request(session, actor, request_id)
    session.refresh(care_request, with_for_update=True)  # a claim may be taking it right now
    if care_request.status is not RequestStatus.OPEN:
        raise RequestNotOpen()
    care_request.status = RequestStatus.WITHDRAWN
    care_request.withdrawn_by_id = actor.id
    return care_request


def expire_requests(session: Session, now: datetime) -> int:
    """Open requests whose window has passed become expired (idempotent)."""
    result = session.execute(
        update(CareRequest)
        .where(CareRequest.status == RequestStatus.OPEN, CareRequest.latest <= now)
        .values(status=RequestStatus.EXPIRED, updated_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def open_requests_for(
    session: Session, practitioner: Practitioner, now: datetime, today: date
) -> list[FeedItem]:
    """Open requests this practitioner fits: their specialty and mode, within their travel
    radius for home visits, with a free slot of theirs in the window. Soonest window first.
    Only a listed practitioner sees the feed (NotListed otherwise)."""
    require_listed(session, practitioner, today)
    offered = [mode for mode in practitioner.modes]
    query = select(CareRequest).where(
        CareRequest.status == RequestStatus.OPEN,
        CareRequest.latest > now,
        CareRequest.specialty.in_(practitioner.specialty_slugs),
        CareRequest.mode.in_(offered),
        # A home request made before an address was asked for cannot be handed over: its
        # patient books from the matches instead.
        or_(CareRequest.mode != Mode.HOME, CareRequest.address.is_not(None)),
    )
    items = []
    for care_request in session.scalars(query.order_by(CareRequest.earliest, CareRequest.id)):
        distance = None
        if care_request.mode is Mode.HOME:
            if practitioner.latitude is None or practitioner.longitude is None:
                continue
            distance = distance_km(
                practitioner.latitude, practitioner.longitude, *care_request.point()
            )
            if distance > (practitioner.travel_radius_km or 0):
                continue
        if free_slots_of(
            session,
            practitioner,
            care_request.earliest,
            care_request.latest,
            now,
            care_request.mode.value,
        ):
            items.append(
                FeedItem(care_request, None if distance is None else float(round(distance)))
            )
    return items
