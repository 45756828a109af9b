"""Which listed practitioners fit a care request, best first, and why.

Eligible: listed (the one listing rule), offers the mode, treats the specialty, for home visits
lives within their own travel radius of the patient, and has a free slot in the window. Ranked by
the score of `score.py`; ties go to the practitioner with the earliest first free slot, then to
the smaller id (stable, and fair: ids are random). Candidates come best reachable score first
(`candidates.py`), and each page's diaries are read together until no remaining candidate can
enter the top `limit`.
"""

from __future__ import annotations

import functools
import uuid
from bisect import insort
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import takewhile
from typing import Any, NamedTuple

from sqlalchemy import BindParameter, Select, bindparam, select
from sqlalchemy.orm import Session

from marketplace.accounts.models import User
from marketplace.booking.models import CareRequest
from marketplace.booking.slots import HeldTime, held_bookings, iter_free_slots, visit_history
from marketplace.clock import BUSINESS_ZONE
from marketplace.matching.candidates import TODAY, Candidate, Window, candidate_pages
from marketplace.matching.score import rank_key, score, soonness
from marketplace.practitioners import availability
from marketplace.practitioners.diary import DiaryCopy, diaries_of, with_diaries
from marketplace.practitioners.listing import listed_clause
from marketplace.practitioners.models import Practitioner, Profession, VisitType
from marketplace.practitioners.vocabulary import SPECIALTY_BY_SLUG, SpecialtyKind
from marketplace.reviews.service import RatingSummary, visible_ratings

NEXT_SLOTS = 3


@dataclass
class Match:
    practitioner: MatchedPractitioner
    distance_km: float | None
    next_slots: list[availability.Interval]
    score: float = 0.0
    reasons: list[str] = field(default_factory=list)


class MatchedPractitioner(NamedTuple):
    """Who a match is with, as the answer shows them."""

    id: uuid.UUID
    full_name: str
    profession: Profession
    rating: RatingSummary  # shown in the reasons, not ranked on


IDS: BindParameter[list[uuid.UUID]] = bindparam("ids", expanding=True)


@functools.cache
def _listed_statement() -> Select[*tuple[Any, ...]]:
    """Those of the candidates `IDS` who are listed today (the entries narrow the search; the
    rule decides), with their ratings and diaries."""
    ratings = visible_ratings(IDS).subquery()
    profiles = (
        select(
            Practitioner.id,
            User.full_name,
            Practitioner.profession,
            ratings.c.average.label("rating_average"),
            ratings.c.count.label("rating_count"),
        )
        .join(Practitioner.user)
        .outerjoin(ratings, ratings.c.practitioner_id == Practitioner.id)
        .where(Practitioner.id.in_(IDS), listed_clause(TODAY))
    )
    return with_diaries(profiles)


def _load_listed(
    session: Session, ids: list[uuid.UUID], today: date, care_request: CareRequest
) -> dict[uuid.UUID, tuple[MatchedPractitioner, DiaryCopy]]:
    """The candidates who are listed, with their ratings and their diaries for the request's
    window, read as rows."""
    one_day = timedelta(days=1)  # the practitioner's dates may be in another time zone
    first, last = care_request.earliest.date() - one_day, care_request.latest.date() + one_day
    values = {"ids": ids, "today": today, "diary_from": first, "diary_to": last}
    rows = session.execute(_listed_statement(), values).all()
    diaries = diaries_of(session, rows, first, last)
    profiles = {row.id: row for row in rows}  # a row per weekly rule
    return {
        row.id: (
            MatchedPractitioner(
                row.id,
                row.full_name,
                row.profession,
                RatingSummary.of(row.rating_average, row.rating_count),
            ),
            diaries[row.id],
        )
        for row in profiles.values()
    }


def describe_slot(start: datetime, now: datetime) -> str:
    """'today 14:00', 'tomorrow 10:00', 'Fri 12 Dec 09:30' (London time)."""
    local = start.astimezone(BUSINESS_ZONE)
    days = (local.date() - now.astimezone(BUSINESS_ZONE).date()).days
    day = {0: "today", 1: "tomorrow"}.get(days, local.strftime("%a %d %b"))
    return f"{day} {local:%H:%M}"


def _reasons(match: Match, care_request: CareRequest, seen: bool, now: datetime) -> list[str]:
    specialty = SPECIALTY_BY_SLUG[care_request.specialty]
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
    if rating := match.practitioner.rating.reason:
        reasons.append(rating)
    return reasons


def _spread(slots: Iterable[availability.Interval]) -> list[availability.Interval]:
    """Up to three next slots that do not overlap each other (09:00, 10:00, 11:00, not 09:15)."""
    chosen: list[availability.Interval] = []
    for slot in slots:
        if not chosen or slot.start >= chosen[-1].end:
            chosen.append(slot)
        if len(chosen) == NEXT_SLOTS:
            break
    return chosen


# A match's place: (-rank key, first slot's start, id), smallest first.
Standing = tuple[int, datetime, uuid.UUID]


def standing(match: Match) -> Standing:
    return (-rank_key(match.score), match.next_slots[0].start, match.practitioner.id)


def _cannot_enter(candidate: Candidate, best: list[tuple[Standing, Match]], limit: int) -> bool:
    """Whether the candidate cannot reach the top `limit`: even its best standing, (-bound,
    earliest start, id), comes after the last one's.

    Sound because a real rank key never exceeds its bound nor a first slot starts before its
    earliest start, and candidates arrive in order of best standing (by bound, then first open
    day, which orders earliest starts, then id): once a candidate cannot enter, none after it
    can."""
    if len(best) < limit:
        return False
    last, _ = best[limit - 1]
    return (-candidate.bound, candidate.earliest_start, candidate.practitioner_id) > last


@dataclass(frozen=True)
class _Evaluation:
    now: datetime
    window: Window
    seen: frozenset[uuid.UUID]
    bookings: dict[uuid.UUID, list[HeldTime]]
    assessed: frozenset[uuid.UUID]  # the next visit with these is a follow-up

    def visit_type(self, practitioner_id: uuid.UUID) -> VisitType:
        return VisitType.FOLLOW_UP if practitioner_id in self.assessed else VisitType.ASSESSMENT


def _evaluate(
    candidate: Candidate,
    practitioner: MatchedPractitioner,
    diary: DiaryCopy,
    care_request: CareRequest,
    context: _Evaluation,
) -> Match | None:
    """The candidate's real score, reasons and next slots (as long as the visit this patient
    would book: an assessment first); None without a free slot."""
    slots = iter_free_slots(
        diary,
        care_request.earliest,
        care_request.latest,
        context.now,
        care_request.mode.value,
        context.bookings.get(candidate.practitioner_id, []),
        context.visit_type(candidate.practitioner_id),
    )
    next_slots = _spread(slots)
    if not next_slots:
        return None
    match = Match(practitioner, candidate.distance_km, next_slots)
    waited = context.window.days_waited(next_slots[0].start)
    match.score = score(candidate.terms._replace(soonness=soonness(waited, context.window.days)))
    seen = candidate.practitioner_id in context.seen
    match.reasons = _reasons(match, care_request, seen, context.now)
    return match


def match_practitioners(
    session: Session,
    care_request: CareRequest,
    *,
    now: datetime,
    today: date,
    limit: int = 20,
) -> list[Match]:
    """Eligible practitioners, best first, each with up to three next free slots."""
    history = visit_history(session, care_request.patient_id, now, max(now, care_request.earliest))
    window = Window.of(care_request)
    best: list[tuple[Standing, Match]] = []  # kept in order
    # An entry the index rewrote between two reads (to another tier or page) may come twice.
    evaluated: set[uuid.UUID] = set()
    for page in candidate_pages(session, care_request, window, today, history, limit):
        fresh = [c for c in page if c.practitioner_id not in evaluated]
        evaluated.update(c.practitioner_id for c in fresh)
        if not fresh:  # all read before
            continue
        # No diary is read for a candidate that already cannot enter, nor for any after it.
        can_enter = list(takewhile(lambda c: not _cannot_enter(c, best, limit), fresh))
        if not can_enter:
            break
        ids = [c.practitioner_id for c in can_enter]
        practitioners = _load_listed(session, ids, today, care_request)
        bookings = held_bookings(session, ids, care_request.earliest, care_request.latest)
        context = _Evaluation(now, window, history.seen, bookings, history.assessed)
        for candidate in can_enter:
            if _cannot_enter(candidate, best, limit):
                return _ranked(best)
            listed = practitioners.get(candidate.practitioner_id)
            if listed is None:  # the listing rule says no (e.g. deactivated just now)
                continue
            match = _evaluate(candidate, *listed, care_request, context)
            if match is not None:
                insort(best, (standing(match), match))
                del best[limit:]
        if len(can_enter) < len(fresh):
            break
    return _ranked(best)


def _ranked(best: list[tuple[Standing, Match]]) -> list[Match]:
    """The matches, best first, their scores rounded for display (ranking used them exact)."""
    for _, match in best:
        match.score = round(match.score, 1)
    return [match for _, match in best]
