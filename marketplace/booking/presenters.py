"""How bookings are shown over HTTP: the booking policy read from the app's configuration, and
a booking as its viewer may see it (the endpoints of bookings, requests and privacy share these)."""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app, g
from sqlalchemy import select

from marketplace.accounts.acting_for import patients_acted_for
from marketplace.accounts.auth import current_account
from marketplace.accounts.models import User
from marketplace.booking import bookings
from marketplace.booking.models import Booking
from marketplace.db import request_session


def booking_policy() -> bookings.BookingPolicy:
    return bookings.BookingPolicy.from_config(current_app.config)


def _patients_acted_for() -> frozenset[uuid.UUID]:
    """The viewer and the patients they are a carer of (read once per request)."""
    if "patients_acted_for" not in g:
        g.patients_acted_for = patients_acted_for(request_session(), current_account())
    acted_for: frozenset[uuid.UUID] = g.patients_acted_for
    return acted_for


def on_patient_side(booking: Booking) -> bool:
    return booking.patient_id in _patients_acted_for()


def shown(booking: Booking) -> dict[str, Any]:
    session = request_session()
    patient = session.get(User, booking.patient_id)
    assert patient is not None  # the foreign key guarantees it
    return bookings.booking_view(
        booking,
        current_account(),
        booking_policy(),
        patient_side=on_patient_side(booking),
        patient=patient,
    )


def shown_all(items: list[Booking]) -> list[dict[str, Any]]:
    """`shown` for many, their patients read in one query (then found in the session)."""
    patient_ids = {booking.patient_id for booking in items}
    if patient_ids:
        request_session().scalars(select(User).where(User.id.in_(patient_ids))).all()
    return [shown(booking) for booking in items]
