"""Open care requests, as patients leave them for practitioners to claim, and claiming them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from marketplace.accounts.models import Role
from marketplace.booking import bookings
from marketplace.booking.models import Booking, CareRequest
from marketplace.clock import business_today
from marketplace.db import utcnow
from marketplace.geo.geometry import KM_PER_DEGREE_LATITUDE
from marketplace.practitioners.models import Mode, Practitioner
from tests.support.factories import make_user

BASE = (51.5020, -0.1380)  # the built-in SW1A centroid, where factory practitioners live


def request_at(db: Session, km_north: float = 0.0, **changes: Any) -> CareRequest:
    """A home-visit request for Parkinson's care `km_north` of where factory practitioners
    live, open from tomorrow for a week."""
    patient = make_user(db, Role.PATIENT)
    now = utcnow()
    fields: dict[str, Any] = {
        "patient_id": patient.id,
        "mode": Mode.HOME,
        "specialty": "parkinsons",
        "latitude": BASE[0] + km_north / KM_PER_DEGREE_LATITUDE,
        "longitude": BASE[1],
        "earliest": now + timedelta(days=1),
        "latest": now + timedelta(days=8),
        **changes,
    }
    request = CareRequest(**fields)
    db.add(request)
    db.flush()
    return request


def open_request(db: Session, start: datetime, **changes: Any) -> CareRequest:
    """A video request for stroke care whose window runs from an hour before `start` to three
    hours after it."""
    fields: dict[str, Any] = {
        "patient_id": make_user(db).id,
        "mode": Mode.VIDEO,
        "specialty": "stroke",
        "earliest": start - timedelta(hours=1),
        "latest": start + timedelta(hours=3),
        **changes,
    }
    request = CareRequest(**fields)
    db.add(request)
    db.flush()
    return request


def claim(
    db: Session, practitioner: Practitioner, request: CareRequest, start: datetime
) -> Booking:
    now = utcnow()
    return bookings.claim_request(
        db, practitioner.user, request.id, start, now=now, today=business_today(now)
    )
