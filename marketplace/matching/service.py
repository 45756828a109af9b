"""Which listed practitioners fit a care request, best first, and why.

Eligible: listed (the one listing rule), offers the mode, treats the specialty, for home visits
lives within their own travel radius of the patient, and has a free slot in the window.

Score, 0 to 100 (documented in the README):
  40 x fit          1.0 when the specialty is core to the profession (neurological conditions for
                    physiotherapists; chronic pain, sports injury and techniques for NMT), else 0.6
  30 x proximity    1 - distance / travel radius for home visits; the same for everyone on video
  20 x soonness     1 - whole days from the window's first day to the first free slot, over the
                    window's length in days
  10 x continuity   the patient has had a visit with this practitioner before
Ties go to the practitioner with the smaller id (stable, and fair: ids are random).

Finding the best without computing everyone's slots: candidates come from an indexed query
(bounding box on latitude/longitude for home visits), are ordered by the best score they could
reach (everything but soonness known, soonness assumed perfect) and are evaluated a page at a
time; evaluation stops once no remaining candidate can enter the top `limit`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, select
from sqlalchemy.orm import Session, selectinload

from marketplace.booking.models import CareRequest
from marketplace.booking.slots import free_slots, held_bookings, practitioners_seen_by
from marketplace.clock import BUSINESS_ZONE
from marketplace.matching.geometry import KM_PER_DEGREE_LATITUDE, bounding_box, distance_km
from marketplace.practitioners import availability
from marketplace.practitioners.listing import listed_clause
from marketplace.practitioners.models import (
    AvailabilityException,
    Mode,
    Practitioner,
    PractitionerSpecialty,
    Profession,
    WeeklyRule,
)
from marketplace.practitioners.vocabulary import SPECIALTY_BY_SLUG, SpecialtyKind

MAX_TRAVEL_RADIUS_KM = 80
NEXT_SLOTS = 3
PAGE = 40
PHYSIOTHERAPY_CORE = frozenset(
    {"stroke", "parkinsons", "multiple_sclerosis", "brain_injury", "spinal_cord_injury",
     "cerebral_palsy", "peripheral_nerve_injury", "balance_disorders"}
)  # fmt: skip
CandidateQuery = Select[uuid.UUID, Profession, float | None, float | None, int | None, int]
WEIGHTS = {"fit": 40, "proximity": 30, "soonness": 20, "continuity": 10}


@dataclass
class Match:
    practitioner: Practitioner
    distance_km: float | None
    next_slots: list[availability.Interval]
    score: float = 0.0
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Window:
    """The request's window in London days: soonness counts whole days from its first day."""

    first_day: date
    days: int
    earliest_local_time: clock_time

    @classmethod
    def of(cls, request: CareRequest) -> Window:
        earliest = request.earliest.astimezone(BUSINESS_ZONE)
        last_day = request.latest.astimezone(BUSINESS_ZONE).date()
        days = max(1, (last_day - earliest.date()).days + 1)
        return cls(earliest.date(), days, earliest.time())

    def soonness(self, first_slot: datetime) -> float:
        waited = (first_slot.astimezone(BUSINESS_ZONE).date() - self.first_day).days
        return max(0.0, 1 - waited / self.days)


@dataclass(frozen=True)
class Candidate:
    """What is known of a candidate before its diary is read, and the best score it can reach:
    its soonness can be no better than its first open day (from its weekly rules) allows."""

    practitioner_id: uuid.UUID
    distance_km: float | None
    static_score: float  # fit, proximity and continuity
    first_open_day: int  # days after the window's first day; optimistic

    def best_possible(self, window: Window) -> float:
        waited = min(self.first_open_day, window.days)
        return self.static_score + WEIGHTS["soonness"] * (1 - waited / window.days)


def specialty_fit(profession: Profession, specialty: str) -> float:
    core_to_physiotherapy = specialty in PHYSIOTHERAPY_CORE
    if (profession is Profession.PHYSIOTHERAPIST) == core_to_physiotherapy:
        return 1.0
    return 0.6


def candidate_statement(request: CareRequest, today: date) -> CandidateQuery:
    """The indexed candidate query: listed practitioners offering the mode and the specialty;
    for home visits, whose base is within their travel radius by a flat-earth test inside a
    bounding box (exact great-circle distances are taken afterwards)."""
    query = (
        select(
            Practitioner.id,
            Practitioner.profession,
            Practitioner.latitude,
            Practitioner.longitude,
            Practitioner.travel_radius_km,
            first_open_day(Window.of(request)),
        )
        .join(
            PractitionerSpecialty,
            and_(
                PractitionerSpecialty.practitioner_id == Practitioner.id,
                PractitionerSpecialty.slug == request.specialty,
            ),
        )
        .where(listed_clause(today))
    )
    if request.mode is not Mode.HOME:
        return query.where(Practitioner.offers_video.is_(True))
    latitude, longitude = request.point()
    box = bounding_box(latitude, longitude, MAX_TRAVEL_RADIUS_KM)
    km_per_degree_longitude = KM_PER_DEGREE_LATITUDE * math.cos(math.radians(latitude))
    north_km = (Practitioner.latitude - latitude) * KM_PER_DEGREE_LATITUDE
    east_km = (Practitioner.longitude - longitude) * km_per_degree_longitude
    generous_radius = Practitioner.travel_radius_km * 1.01 + 0.1  # flat earth is a little off
    return query.where(
        Practitioner.offers_home.is_(True),
        Practitioner.latitude.between(box.min_latitude, box.max_latitude),
        Practitioner.longitude.between(box.min_longitude, box.max_longitude),
        north_km * north_km + east_km * east_km <= generous_radius * generous_radius,
    )


def first_open_day(window: Window) -> ColumnElement[int]:
    """SQL: the first day of the window (0, 1, ...) on which a weekly rule opens, counting a
    rule of the first day only if it ends after the window starts; 0 when a dated opening falls
    in the window or the practitioner keeps another time zone (no cheap bound then)."""
    day = (WeeklyRule.weekday - window.first_day.weekday() + 7) % 7
    over_on_first_day = and_(day == 0, WeeklyRule.end_time <= window.earliest_local_time)
    from_rules = (
        select(func.min(case((over_on_first_day, 7), else_=day)))
        .where(WeeklyRule.practitioner_id == Practitioner.id)
        .correlate(Practitioner)
        .scalar_subquery()
    )
    last_day = window.first_day + timedelta(days=window.days - 1)
    dated_opening = (
        select(AvailabilityException.id)
        .where(
            AvailabilityException.practitioner_id == Practitioner.id,
            AvailabilityException.available.is_(True),
            AvailabilityException.on_date.between(window.first_day, last_day),
        )
        .correlate(Practitioner)
        .exists()
    )
    return case(
        (dated_opening, 0),
        (Practitioner.timezone != BUSINESS_ZONE.key, 0),
        else_=func.coalesce(from_rules, window.days),
    ).label("first_open_day")


def _video_page_statement(
    request: CareRequest, today: date, seen: frozenset[uuid.UUID], offset: int
) -> CandidateQuery:
    """For video the reachable score needs no distance: the database orders and pages the
    candidates by it (times the window's days, to stay in whole numbers)."""
    window = Window.of(request)
    core_profession = (
        Profession.PHYSIOTHERAPIST
        if request.specialty in PHYSIOTHERAPY_CORE
        else Profession.NEUROMUSCULAR_THERAPIST
    )
    fit = case((Practitioner.profession == core_profession, 40), else_=24)
    continuity = case((Practitioner.id.in_(seen), 10), else_=0) if seen else literal(0)
    opens = first_open_day(window)
    waited = case((opens > window.days, window.days), else_=opens)
    reachable = (fit + WEIGHTS["proximity"] + continuity) * window.days + WEIGHTS["soonness"] * (
        window.days - waited
    )
    return (
        candidate_statement(request, today)
        .order_by(reachable.desc(), Practitioner.id)
        .offset(offset)
        .limit(PAGE)
    )


def _candidate(
    row: Sequence[Any],
    request: CareRequest,
    seen: frozenset[uuid.UUID],
) -> Candidate | None:
    practitioner_id, profession, latitude, longitude, radius, opens = row
    proximity, distance = 1.0, None
    if request.mode is Mode.HOME:
        if latitude is None or longitude is None or not radius:
            return None
        distance = distance_km(*request.point(), latitude, longitude)
        if distance > radius:
            return None
        proximity = max(0.0, 1 - distance / radius)
    static = (
        WEIGHTS["fit"] * specialty_fit(profession, request.specialty)
        + WEIGHTS["proximity"] * proximity
        + WEIGHTS["continuity"] * (practitioner_id in seen)
    )
    return Candidate(
        practitioner_id, None if distance is None else round(distance, 1), static, int(opens)
    )


def _ranked_candidates(
    session: Session, request: CareRequest, today: date, seen: frozenset[uuid.UUID]
) -> list[Candidate] | None:
    """Home visits: every candidate in reach, best reachable score first (None for video,
    whose candidates are paged by the database)."""
    if request.mode is not Mode.HOME:
        return None
    rows = session.execute(candidate_statement(request, today)).all()
    found = [c for c in (_candidate(row, request, seen) for row in rows) if c is not None]
    window = Window.of(request)
    found.sort(key=lambda c: (-c.best_possible(window), c.practitioner_id))
    return found


def _pages(
    session: Session, request: CareRequest, today: date, seen: frozenset[uuid.UUID]
) -> Iterator[list[Candidate]]:
    ranked = _ranked_candidates(session, request, today, seen)
    if ranked is not None:
        for start in range(0, len(ranked), PAGE):
            yield ranked[start : start + PAGE]
        return
    offset = 0
    while True:
        rows = session.execute(_video_page_statement(request, today, seen, offset)).all()
        page = [c for c in (_candidate(row, request, seen) for row in rows) if c is not None]
        if page:
            yield page
        if len(rows) < PAGE:
            return
        offset += PAGE


def _load(session: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, Practitioner]:
    practitioners = session.scalars(
        select(Practitioner)
        .where(Practitioner.id.in_(ids))
        .options(
            selectinload(Practitioner.user),
            selectinload(Practitioner.weekly_rules),
            selectinload(Practitioner.exceptions),
        )
    )
    return {practitioner.id: practitioner for practitioner in practitioners}


def describe_slot(start: datetime, now: datetime) -> str:
    """'today 14:00', 'tomorrow 10:00', 'Fri 12 Dec 09:30' (London time)."""
    local = start.astimezone(BUSINESS_ZONE)
    days = (local.date() - now.astimezone(BUSINESS_ZONE).date()).days
    day = {0: "today", 1: "tomorrow"}.get(days, local.strftime("%a %d %b"))
    return f"{day} {local:%H:%M}"


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


def _spread(slots: list[availability.Interval]) -> list[availability.Interval]:
    """Up to three next slots that do not overlap each other (09:00, 10:00, 11:00, not 09:15)."""
    chosen: list[availability.Interval] = []
    for slot in slots:
        if not chosen or slot.start >= chosen[-1].end:
            chosen.append(slot)
        if len(chosen) == NEXT_SLOTS:
            break
    return chosen


def _cannot_enter(
    candidate: Candidate, best: list[tuple[float, uuid.UUID, Match]], limit: int, window: Window
) -> bool:
    """Whether the candidate cannot reach the top `limit` (ties go to the smaller id).

    Sound because candidates arrive ordered by (best possible score, id) and a real score never
    exceeds its best possible one (both unrounded: rounding is for display only), so once a
    candidate cannot enter, none after it can."""
    if len(best) < limit:
        return False
    last_score, last_id, _ = best[limit - 1]
    reachable = candidate.best_possible(window)
    return reachable < last_score or (
        reachable == last_score and candidate.practitioner_id > last_id
    )


def match_practitioners(
    session: Session,
    request: CareRequest,
    *,
    now: datetime,
    today: date,
    limit: int = 20,
) -> list[Match]:
    """Eligible practitioners, best first, each with up to three next free slots."""
    seen = practitioners_seen_by(session, request.patient_id, now)
    window = Window.of(request)
    best: list[tuple[float, uuid.UUID, Match]] = []
    for page in _pages(session, request, today, seen):
        page = [c for c in page if not _cannot_enter(c, best, limit, window)]
        if not page:
            break
        ids = [c.practitioner_id for c in page]
        practitioners = _load(session, ids)
        bookings = held_bookings(session, ids, request.earliest, request.latest)
        for candidate in page:
            practitioner = practitioners[candidate.practitioner_id]
            slots = free_slots(
                practitioner,
                request.earliest,
                request.latest,
                now,
                request.mode.value,
                bookings.get(candidate.practitioner_id, []),
            )
            if not slots:
                continue
            match = Match(practitioner, candidate.distance_km, _spread(slots))
            exact = candidate.static_score + WEIGHTS["soonness"] * window.soonness(slots[0].start)
            match.score = round(exact, 1)
            match.reasons = _reasons(match, request, candidate.practitioner_id in seen, now)
            best.append((exact, candidate.practitioner_id, match))
        best.sort(key=lambda entry: (-entry[0], entry[1]))
        del best[limit:]
    return [match for _, _, match in best]
