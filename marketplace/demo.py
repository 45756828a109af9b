"""A small believable data set for trying the service; later domains extend it.

Every row is made through the services, so the demo obeys the same rules as real use. Loading
twice changes nothing: accounts that exist are skipped.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.accounts import service as accounts
from marketplace.accounts.models import Role, User
from marketplace.admin import service as admin
from marketplace.booking.bookings import BookingInput, BookingPolicy, create_booking
from marketplace.booking.courses import CourseClashes, CourseInput, book_course
from marketplace.booking.models import Booking, BookingStatus
from marketplace.booking.slots import free_slots_of
from marketplace.caregivers import service as carers
from marketplace.db import utcnow
from marketplace.errors import DomainError
from marketplace.geo.geocoding import TableGeocoder, load_builtin_london_outcodes
from marketplace.practitioners import service as practitioners
from marketplace.practitioners.listing import listed_clause
from marketplace.practitioners.models import (
    CredentialKind,
    Mode,
    Practitioner,
    Profession,
    VisitType,
)
from marketplace.reviews import service as reviews

DEMO_PASSWORD = "demo-visit-2026"  # noqa: S105 (printed for demo users)
ADMIN_EMAIL = "admin@demo.example"
DEMO_REVIEW = "Clear, patient and practical: the exercises fit around my day."
DEMO_REPLY = "Thank you, keep going with the balance work!"
MORE_REVIEWS = [
    (4, "Friendly and on time; the video call worked well for my dad."),
    (5, "Gave us a plan we could follow at home between visits."),
]
PATIENT_EMAIL = "patient@demo.example"
CARER_EMAIL = "carer@demo.example"

PEOPLE: list[tuple[str, str, Role, str | None]] = [
    (ADMIN_EMAIL, "Ada Okafor", Role.ADMIN, None),
    (PATIENT_EMAIL, "Peter Lewis", Role.PATIENT, "020 7946 0123"),
    (CARER_EMAIL, "Maya Lewis", Role.PATIENT, None),
]

FIRST_NAMES = [
    "Priya",
    "Tom",
    "Grace",
    "Oliver",
    "Amara",
    "James",
    "Sofia",
    "Daniel",
    "Chloe",
    "Kwame",
    "Hannah",
    "Mateusz",
    "Aisha",
    "Rhys",
    "Leila",
    "George",
    "Niamh",
    "Arjun",
    "Zara",
    "Samuel",
    "Imogen",
    "Tariq",
    "Eleanor",
    "Luca",
    "Fatima",
    "Ben",
    "Olivia",
    "Yusuf",
    "Isla",
    "Marcus",
]
SURNAMES = [
    "Shah",
    "Ellis",
    "Mensah",
    "Wright",
    "Nwosu",
    "Hughes",
    "Rossi",
    "Cohen",
    "Baker",
    "Owusu",
    "Fraser",
    "Kowalski",
    "Rahman",
    "Jones",
    "Haddad",
    "Clarke",
    "Byrne",
    "Patel",
    "Ahmed",
    "Reid",
    "Turner",
    "Aziz",
    "Morgan",
    "Bianchi",
    "Begum",
    "Price",
    "Evans",
    "Demir",
    "Scott",
    "Brown",
]
# Central postcodes of London districts: the demo practitioners' bases.
LONDON_BASES = [
    "N1 9GU",
    "N7 6PA",
    "NW1 8NH",
    "NW3 2QG",
    "NW6 7BD",
    "E2 9PL",
    "E8 1EA",
    "E14 5AB",
    "E17 4PJ",
    "SE1 7PB",
    "SE5 8RX",
    "SE10 9NF",
    "SE15 4ST",
    "SE22 8HF",
    "SW2 1RW",
    "SW4 7AA",
    "SW6 1HS",
    "SW9 8EJ",
    "SW11 1JG",
    "SW15 1SQ",
    "SW19 1AA",
    "W2 1NY",
    "W4 2PH",
    "W5 2NP",
    "W6 9JT",
    "W12 7GF",
    "WC1N 3JH",
    "EC1V 2NX",
    "HA0 1AA",
    "CR0 1LD",
]
NEURO = [
    "stroke",
    "parkinsons",
    "multiple_sclerosis",
    "brain_injury",
    "spinal_cord_injury",
    "cerebral_palsy",
    "peripheral_nerve_injury",
    "balance_disorders",
]
NMT_TECHNIQUES = [
    "trigger_point",
    "compression",
    "stretching",
    "cross_fibre_friction",
    "positional_release",
    "post_isometric_relaxation",
    "pnf",
    "musculoskeletal_reeducation",
    "myofascial_release",
]
PENDING_EVERY = 6  # every sixth practitioner still waits for verification, to try the queue


@dataclass(frozen=True)
class DemoLogin:
    email: str
    role: str
    note: str = ""


def _ensure_user(
    session: Session, email: str, full_name: str, role: Role, phone: str | None
) -> tuple[User, bool]:
    existing = accounts.find_user_by_email(session, email)
    if existing is not None:
        return existing, False
    user = accounts.create_user(
        session, email=email, password=DEMO_PASSWORD, full_name=full_name, role=role, phone=phone
    )
    return user, True


def _weekly_hours(rng: random.Random, modes: list[str]) -> list[dict[str, object]]:
    """Flexible work: three to five days a week, mornings, afternoons or both."""
    days = sorted(rng.sample(range(6), rng.randint(3, 5)))
    shapes = [[(8, 12)], [(13, 18)], [(9, 13), (14, 17)], [(10, 16)]]
    return [
        {"weekday": day, "start": time(start), "end": time(end), "modes": modes}
        for day in days
        for start, end in rng.choice(shapes)
    ]


def _practitioner_profile(index: int, rng: random.Random) -> practitioners.ProfileInput:
    physio = index % 3 != 2
    modes = rng.choice(
        [[Mode.HOME, Mode.VIDEO], [Mode.HOME, Mode.VIDEO], [Mode.HOME], [Mode.VIDEO]]
    )
    if physio:
        specialties = rng.sample(NEURO, rng.randint(2, 4))
        bio = "HCPC-registered neurological physiotherapist: rehabilitation at home and online."
    else:
        specialties = rng.sample(NMT_TECHNIQUES, 3) + rng.sample(
            ["chronic_pain", "sports_injury"], 1
        )
        bio = "Certified neuromuscular therapist (450+ training hours) for chronic pain and injury."
    return practitioners.ProfileInput(
        profession=Profession.PHYSIOTHERAPIST if physio else Profession.NEUROMUSCULAR_THERAPIST,
        bio=bio,
        specialties=specialties,
        modes=modes,
        base_postcode=LONDON_BASES[index % len(LONDON_BASES)],
        travel_radius_km=rng.choice([5, 8, 10, 15, 20]),
        session_minutes=rng.choice([45, 60, 60, 75, 90]),
        price_pence=rng.choice([6000, 7000, 7500, 8500, 9500]),
        languages=["en", *rng.sample(["pl", "ur", "es", "it", "yo", "fr"], rng.randint(0, 1))],
    )


def _credential_fields(index: int, profession: Profession) -> dict[str, object]:
    if profession is Profession.PHYSIOTHERAPIST:
        return {"kind": "hcpc", "number": f"PH{810000 + index}"}
    return {
        "kind": "nmt_certificate",
        "number": f"NMT-DEMO-{index:03d}",
        "issuer": "London School of Neuromuscular Therapy",
        "programme": "Diploma in Neuromuscular Therapy",
        "training_hours": 450 + 10 * index,
        "issued_on": date(2022, 9, 1),
        "expires_on": None,
    }


def _next_hcpc_renewal(today: date) -> date:
    """HCPC physiotherapy registrations run to 30 April of the next even year but one."""
    return date(today.year + (2 if today.year % 2 == 0 else 1), 4, 30)


def _load_practitioner(
    session: Session, index: int, reviewer: User, today: date, rng: random.Random
) -> DemoLogin | None:
    name = f"{FIRST_NAMES[index]} {SURNAMES[index]}"
    email = f"{FIRST_NAMES[index].lower()}.{SURNAMES[index].lower()}@demo.example"
    user, created = _ensure_user(session, email, name, Role.PRACTITIONER, None)
    profile = _practitioner_profile(index, rng)  # drawn always, so the sequence is stable
    weekly = _weekly_hours(rng, [mode.value for mode in profile.modes])
    if not created:
        return None
    practitioner = practitioners.save_profile(session, user, profile, today, TableGeocoder())
    credential = practitioners.submit_credential(
        session, user, _credential_fields(index, practitioner.profession), today
    )
    practitioners.set_availability(
        session, user, {"timezone": "Europe/London", "weekly": weekly, "exceptions": []}
    )
    if index % PENDING_EVERY == PENDING_EVERY - 1:
        return DemoLogin(email, "practitioner", "credential pending: try the admin queue")
    admin.decide_credential(
        session,
        reviewer,
        credential.id,
        decision=admin.Decision.APPROVE,
        reason=None,
        expires_on=_next_hcpc_renewal(today) if credential.kind is CredentialKind.HCPC else None,
        register_check="Demo data: checked against the register.",
        today=today,
    )
    return DemoLogin(email, "practitioner") if index < 3 else None


def load_demo_data(session: Session, today: date) -> list[DemoLogin]:
    """Create what does not exist yet; returns the logins worth printing."""
    load_builtin_london_outcodes(session)
    logins = []
    for email, full_name, role, phone in PEOPLE:
        _ensure_user(session, email, full_name, role, phone)
        note = "carer for Peter Lewis: books for him" if email == CARER_EMAIL else ""
        logins.append(DemoLogin(email, role.value, note))
    reviewer = accounts.find_user_by_email(session, ADMIN_EMAIL)
    assert reviewer is not None
    rng = random.Random(2026)  # noqa: S311 (demo data, not security)
    for index in range(len(FIRST_NAMES)):
        login = _load_practitioner(session, index, reviewer, today, rng)
        if login is not None:
            logins.append(login)
    _load_bookings(session, today, utcnow())
    return logins


def _load_bookings(session: Session, today: date, now: datetime) -> None:
    """The demo patient's visits, once: past ones (completed and reviewed, so matching shows
    continuity and ratings), a course, and the first free video and home slots of the first
    listed practitioners, the home visit booked by his daughter as his carer."""
    patient = accounts.find_user_by_email(session, PATIENT_EMAIL)
    carer = accounts.find_user_by_email(session, CARER_EMAIL)
    assert patient is not None
    assert carer is not None
    if session.scalar(select(Booking.id).where(Booking.patient_id == patient.id)) is not None:
        return
    listed = list(
        session.scalars(
            select(Practitioner)
            .where(listed_clause(today))
            .order_by(Practitioner.created_at, Practitioner.id)
            .limit(10)
        )
    )
    if not listed:
        return
    invitation = carers.invite_carer(session, patient, carer.email, now)
    carers.accept_invitation(session, carer, invitation.code, now)
    past = _past_visit(session, patient, listed[0], now - timedelta(days=14))
    reviewed = reviews.review_visit(session, patient, past.id, 5, DEMO_REVIEW, now)
    reviews.reply_to_review(session, listed[0].user, reviewed.id, DEMO_REPLY, now)
    for practitioner, (rating, comment) in zip(listed[1:], MORE_REVIEWS, strict=False):
        visit = _past_visit(session, patient, practitioner, now - timedelta(days=10))
        reviews.review_visit(session, carer, visit.id, rating, comment, now)
    _book_demo_course(session, patient, listed[0], today, now)
    for mode, booked_by in ((Mode.VIDEO, patient), (Mode.HOME, carer)):
        offering = next((p for p in listed if mode in p.modes), None)
        if offering is not None:
            _book_first_free_slot(session, booked_by, patient, offering, mode, today, now)


def _past_visit(
    session: Session, patient: User, practitioner: Practitioner, when: datetime
) -> Booking:
    """A completed assessment (written directly: bookings are only made ahead)."""
    start = when.replace(minute=0, second=0, microsecond=0)
    visit = Booking(
        practitioner_id=practitioner.id,
        patient_id=patient.id,
        booked_by_id=patient.id,
        mode=Mode.VIDEO,
        starts_at=start,
        ends_at=start + practitioner.visit_length(VisitType.ASSESSMENT),
        status=BookingStatus.COMPLETED,
        visit_type=VisitType.ASSESSMENT,
    )
    session.add(visit)
    session.flush()
    return visit


def _book_demo_course(
    session: Session, patient: User, practitioner: Practitioner, today: date, now: datetime
) -> None:
    """Four weekly video follow-ups after the assessment, at the first weekly time that is free."""
    week_ahead = now + timedelta(days=7)
    slots = free_slots_of(
        session,
        practitioner,
        week_ahead,
        week_ahead + timedelta(days=7),
        now,
        Mode.VIDEO.value,
        VisitType.FOLLOW_UP,
    )
    for slot in slots[:40]:
        course = CourseInput(slot.start, 4, Mode.VIDEO, practitioner_id=practitioner.id)
        try:
            with session.begin_nested():
                book_course(
                    session,
                    patient,
                    course,
                    now=now,
                    today=today,
                    geocoder=TableGeocoder(),
                    policy=BookingPolicy(),
                )
        except CourseClashes:
            continue
        return


def _book_first_free_slot(
    session: Session,
    booked_by: User,
    patient: User,
    practitioner: Practitioner,
    mode: Mode,
    today: date,
    now: datetime,
) -> None:
    slots = free_slots_of(session, practitioner, now, now + timedelta(days=21), now, mode.value)
    for slot in slots:
        home = mode is Mode.HOME
        data = BookingInput(
            practitioner.id,
            slot.start,
            mode,
            patient_id=patient.id,
            address="12 Demo Terrace, London" if home else None,
            postcode=practitioner.base_postcode if home else None,
        )
        try:
            with session.begin_nested():
                create_booking(
                    session, booked_by, data, now=now, today=today, geocoder=TableGeocoder()
                )
            return
        except DomainError:  # the patient is busy then: try the next slot
            continue
