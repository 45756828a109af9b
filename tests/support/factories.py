"""Test data made through the services, so every row obeys the same rules as in production."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.orm import Session

from marketplace.accounts import service as accounts
from marketplace.accounts.models import CarerGrant, Role, User
from marketplace.admin import service as admin
from marketplace.booking import bookings
from marketplace.booking.models import Booking, BookingStatus
from marketplace.caregivers import service as carers
from marketplace.clock import BUSINESS_ZONE, business_today
from marketplace.db import utcnow
from marketplace.geo.geocoding import TableGeocoder
from marketplace.practitioners import service as practitioners
from marketplace.practitioners.models import Credential, Mode, Practitioner, Profession, VisitType
from tests.support.accounts import PASSWORD

_numbers = itertools.count(100001)


def make_user(db: Session, role: Role = Role.PATIENT, email: str | None = None) -> User:
    email = email or f"{role.value}{next(_numbers)}@example.org"
    return accounts.create_user(
        db, email=email, password=PASSWORD, full_name="Test Person", role=role
    )


def profile_input(**overrides: Any) -> practitioners.ProfileInput:
    fields: dict[str, Any] = {
        "profession": Profession.PHYSIOTHERAPIST,
        "bio": "Neurological physiotherapist.",
        "specialties": ["stroke", "parkinsons"],
        "modes": [Mode.HOME, Mode.VIDEO],
        "base_postcode": "SW1A 1AA",
        "travel_radius_km": 10,
        "session_minutes": 60,
        "price_pence": 7500,
        "languages": ["en"],
        # As long as a session, so tests about other rules see one length; visit-type tests
        # set their own.
        "assessment_minutes": 60,
    }
    fields.update(overrides)
    fields["profession"] = Profession(fields["profession"])
    fields["modes"] = [Mode(mode) for mode in fields["modes"]]
    return practitioners.ProfileInput(**fields)


def hcpc_fields(number: str | None = None) -> dict[str, Any]:
    return {"kind": "hcpc", "number": number or f"PH{next(_numbers)}"}


def nmt_fields(hours: int = 450, number: str | None = None) -> dict[str, Any]:
    return {
        "kind": "nmt_certificate",
        "number": number or f"NMT-{next(_numbers)}",
        "issuer": "Northern Institute of Massage",
        "programme": "Neuromuscular Therapy Diploma",
        "training_hours": hours,
        "issued_on": date(2024, 6, 1),
        "expires_on": None,
    }


def make_practitioner(
    db: Session,
    *,
    verified: bool = True,
    expires_on: date | None = None,
    today: date | None = None,
    weekly: list[dict[str, Any]] | None = None,
    **profile: Any,
) -> Practitioner:
    """A practitioner with a profile and the credential their profession needs (verified by an
    admin unless `verified=False`), open Monday to Friday 09:00-17:00 unless told otherwise."""
    today = today or business_today()
    user = make_user(db, Role.PRACTITIONER)
    practitioner = practitioners.save_profile(
        db, user, profile_input(**profile), today, TableGeocoder()
    )
    nmt = practitioner.profession is Profession.NEUROMUSCULAR_THERAPIST
    credential = practitioners.submit_credential(
        db, user, nmt_fields() if nmt else hcpc_fields(), today
    )
    if verified:
        approve(db, credential, expires_on or today + timedelta(days=365), today)
    practitioners.set_availability(
        db,
        user,
        {
            "timezone": "Europe/London",
            "weekly": weekly
            if weekly is not None
            else [
                {"weekday": day, "start": time(9), "end": time(17), "modes": ["home", "video"]}
                for day in range(5)
            ],
            "exceptions": [],
        },
    )
    return practitioner


def the_admin(db: Session) -> User:
    return make_user(db, Role.ADMIN)


def approve(db: Session, credential: Credential, expires_on: date, today: date) -> Credential:
    return admin.decide_credential(
        db,
        the_admin(db),
        credential.id,
        decision=admin.Decision.APPROVE,
        reason=None,
        expires_on=expires_on,
        register_check="Checked the HCPC register: registered, no sanctions.",
        today=today,
    )


def pending_credential(db: Session, **profile: Any) -> Credential:
    """A new practitioner's profile and an HCPC credential waiting for an admin's decision."""
    user = make_user(db, Role.PRACTITIONER)
    practitioners.save_profile(
        db, user, profile_input(**profile), business_today(), TableGeocoder()
    )
    return practitioners.submit_credential(db, user, hcpc_fields(), business_today())


def make_booking(
    db: Session,
    practitioner: Practitioner,
    starts_at: datetime,
    ends_at: datetime,
    *,
    mode: Mode = Mode.HOME,
    status: BookingStatus = BookingStatus.CONFIRMED,
    patient_id: uuid.UUID | None = None,
    visit_type: VisitType = VisitType.FOLLOW_UP,
) -> Booking:
    """A booking row as it stands in the database (the booking rules come with their service)."""
    booking = Booking(
        practitioner_id=practitioner.id,
        patient_id=patient_id or make_user(db).id,
        mode=mode,
        starts_at=starts_at,
        ends_at=ends_at,
        status=status,
        visit_type=visit_type,
    )
    db.add(booking)
    db.flush()
    return booking


# The policy tests cancel and reschedule under: late within 24 hours, links on a test host.
BOOKING_POLICY = bookings.BookingPolicy(timedelta(hours=24), "https://meet.example.org/")


def weekday_at(hour: int, days_ahead: int = 3, minute: int = 0) -> datetime:
    """A Monday-to-Friday date at least `days_ahead` days away, at hour:minute London time."""
    day = business_today() + timedelta(days=days_ahead)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime.combine(day, time(hour, minute), tzinfo=BUSINESS_ZONE).astimezone(UTC)


def book(
    db: Session,
    patient: User,
    practitioner: Practitioner,
    start: datetime,
    mode: Mode = Mode.VIDEO,
    *,
    key: str | None = None,
    **fields: Any,
) -> Booking:
    now = utcnow()
    booking, _ = bookings.create_booking(
        db,
        patient,
        bookings.BookingInput(practitioner.id, start, mode, **fields),
        now=now,
        today=business_today(now),
        geocoder=TableGeocoder(),
        idempotency_key=key,
    )
    return booking


def past_visit(
    db: Session,
    patient: User,
    practitioner: Practitioner,
    start: datetime,
    mode: Mode = Mode.VIDEO,
    *,
    back: timedelta = timedelta(days=14),
    status: BookingStatus = BookingStatus.COMPLETED,
    **fields: Any,
) -> Booking:
    """A visit booked through the service at `start` (bookings are only made ahead), then moved
    `back` into the past with its outcome."""
    booking = book(db, patient, practitioner, start, mode, **fields)
    booking.starts_at -= back
    booking.ends_at -= back
    booking.status = status
    db.flush()
    return booking


def make_carer(db: Session, patient: User, carer: User | None = None) -> tuple[User, CarerGrant]:
    """A patient account that has accepted `patient`'s invitation to be their carer."""
    carer = carer or make_user(db)
    invitation = carers.invite_carer(db, patient, carer.email, utcnow())
    return carer, carers.accept_invitation(db, carer, invitation.code, utcnow())
