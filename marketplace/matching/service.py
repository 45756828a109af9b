"""Which listed practitioners fit a care request, best first, and why.

Eligible: listed (the one listing rule), offers the mode, treats the specialty, for home visits
lives within their own travel radius of the patient, and has a free slot in the window.

Score, 0 to 100 (documented in the README):
  40 x fit          1.0 when the specialty is core to the profession (neurological conditions for
                    physiotherapists; chronic pain, sports injury and techniques for NMT), else 0.6
  30 x proximity    1 - distance / travel radius for home visits; the same for everyone on video
  20 x soonness     how early in the patient's window the first free slot is
  10 x continuity   the patient has seen this practitioner before
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from marketplace.booking.models import CareRequest
from marketplace.booking.slots import free_slots, held_bookings, practitioners_seen_by
from marketplace.clock import BUSINESS_ZONE
from marketplace.matching.geometry import bounding_box, distance_km
from marketplace.practitioners import availability
from marketplace.practitioners.listing import listed_clause
from marketplace.practitioners.models import (
    Mode,
    Practitioner,
    PractitionerSpecialty,
    Profession,
)
from marketplace.practitioners.vocabulary import SPECIALTY_BY_SLUG, SpecialtyKind

MAX_TRAVEL_RADIUS_KM = 80
NEXT_SLOTS = 3
PHYSIOTHERAPY_CORE = frozenset(
    {"stroke", "parkinsons", "multiple_sclerosis", "brain_injury", "spinal_cord_injury",
     "cerebral_palsy", "peripheral_nerve_injury", "balance_disorders"}
)  # fmt: skip
WEIGHTS = {"fit": 40, "proximity": 30, "soonness": 20, "continuity": 10}


@dataclass
class Match:
    practitioner: Practitioner
    distance_km: float | None
    next_slots: list[availability.Interval]
    score: float = 0.0
    reasons: list[str] = field(default_factory=list)


def specialty_fit(profession: Profession, specialty: str) -> float:
    core_to_physiotherapy = specialty in PHYSIOTHERAPY_CORE
    if (profession is Profession.PHYSIOTHERAPIST) == core_to_physiotherapy:
        return 1.0
    return 0.6


def candidates(session: Session, request: CareRequest, today: date) -> list[Practitioner]:
    """Listed practitioners offering the mode and specialty; for home visits only those whose
    base lies in the bounding box of the largest travel radius (an indexed range query)."""
    query = (
        select(Practitioner)
        .join(
            PractitionerSpecialty,
            (PractitionerSpecialty.practitioner_id == Practitioner.id)
            & (PractitionerSpecialty.slug == request.specialty),
        )
        .where(listed_clause(today))
        .options(
            selectinload(Practitioner.user),
            selectinload(Practitioner.weekly_rules),
            selectinload(Practitioner.exceptions),
            selectinload(Practitioner.specialties),
        )
    )
    if request.mode is Mode.HOME:
        box = bounding_box(*request.point(), MAX_TRAVEL_RADIUS_KM)
        query = query.where(
            Practitioner.offers_home.is_(True),
            Practitioner.latitude.between(box.min_latitude, box.max_latitude),
            Practitioner.longitude.between(box.min_longitude, box.max_longitude),
        )
    else:
        query = query.where(Practitioner.offers_video.is_(True))
    return list(session.scalars(query))


def _distance_if_reachable(practitioner: Practitioner, request: CareRequest) -> float | None:
    if request.mode is not Mode.HOME:
        return None
    if practitioner.latitude is None or practitioner.longitude is None:
        return None
    return distance_km(*request.point(), practitioner.latitude, practitioner.longitude)


def describe_slot(start: datetime, now: datetime) -> str:
    """'today 14:00', 'tomorrow 10:00', 'Fri 12 Dec 09:30' (London time)."""
    local = start.astimezone(BUSINESS_ZONE)
    days = (local.date() - now.astimezone(BUSINESS_ZONE).date()).days
    day = {0: "today", 1: "tomorrow"}.get(days, local.strftime("%a %d %b"))
    return f"{day} {local:%H:%M}"


def _score(match: Match, request: CareRequest, seen: bool) -> None:
    practitioner = match.practitioner
    fit = specialty_fit(practitioner.profession, request.specialty)
    if match.distance_km is None:
        proximity = 1.0
    else:
        proximity = max(0.0, 1 - match.distance_km / (practitioner.travel_radius_km or 1))
    window = (request.latest - request.earliest).total_seconds()
    wait = (match.next_slots[0].start - request.earliest).total_seconds()
    soonness = max(0.0, 1 - max(0.0, wait) / window)
    parts = {"fit": fit, "proximity": proximity, "soonness": soonness, "continuity": float(seen)}
    match.score = round(sum(WEIGHTS[name] * value for name, value in parts.items()), 1)


def _reasons(match: Match, request: CareRequest, seen: bool, now: datetime) -> list[str]:
    specialty = SPECIALTY_BY_SLUG[request.specialty]
    verb = "treats" if specialty.kind is SpecialtyKind.CONDITION else "offers"
    reasons = []
    if seen:
        reasons.append("you have seen them before")
    if match.distance_km is not None:
        reasons.append(f"{match.distance_km:.1f} km away")
    else:
        reasons.append("video visits")
    reasons.append(f"{verb} {specialty.label[0].lower() + specialty.label[1:]}")
    reasons.append(f"free {describe_slot(match.next_slots[0].start, now)}")
    return reasons


def match_practitioners(
    session: Session,
    request: CareRequest,
    *,
    now: datetime,
    today: date,
    limit: int = 20,
) -> list[Match]:
    """Eligible practitioners, best first, each with up to three next free slots."""
    seen_before = practitioners_seen_by(session, request.patient_id, now)
    found = candidates(session, request, today)
    bookings = held_bookings(session, [p.id for p in found], request.earliest, request.latest)
    matches = []
    for practitioner in found:
        distance = _distance_if_reachable(practitioner, request)
        if request.mode is Mode.HOME and (
            distance is None or distance > (practitioner.travel_radius_km or 0)
        ):
            continue
        slots = free_slots(
            practitioner,
            request.earliest,
            request.latest,
            now,
            request.mode.value,
            bookings.get(practitioner.id, []),
        )
        if not slots:
            continue
        match = Match(
            practitioner, None if distance is None else round(distance, 1), _spread(slots)
        )
        seen = practitioner.id in seen_before
        _score(match, request, seen)
        match.reasons = _reasons(match, request, seen, now)
        matches.append(match)
    matches.sort(key=lambda m: (-m.score, m.next_slots[0].start, str(m.practitioner.id)))
    return matches[:limit]


def _spread(slots: list[availability.Interval]) -> list[availability.Interval]:
    """Up to three next slots that do not overlap each other (09:00, 10:00, 11:00, not 09:15)."""
    chosen: list[availability.Interval] = []
    for slot in slots:
        if not chosen or slot.start >= chosen[-1].end:
            chosen.append(slot)
        if len(chosen) == NEXT_SLOTS:
            break
    return chosen
