"""Candidates for a care request, best reachable score first, a page at a time.

Finding the best without reading everyone's diary: candidates come from the match entries (an
index kept per listed practitioner, specialty and mode; for home visits a GiST index on each
practitioner's reach on PostgreSQL). The database ranks them by the best score each could reach
(`score.bound_key_sql` of `bound_terms`): fit and continuity exactly, proximity from a flat-earth
distance shrunk to stay below the true one, soonness from the first day an assessment (the visit a
new patient books) can still start by their weekly hours, or the window's first day for those who
assessed the patient; equal bounds go to the earlier first open day, whose opening is the earliest
a first slot can start (for video, whose bounds tie by the thousand, then to the earlier time that
day opens: the start of the first hours holding an assessment, or the window's opening on the slot
grid, so ties on score read the soonest free first and stop early). `service.match_practitioners`
then evaluates them a page at a time until no remaining one can enter the top `limit`. Video
requests, which have no reach to narrow them, take the same order tier by tier instead
(`_video_candidates`): a bound there is one of a few values, so no video entry is ranked before it
is needed.
"""

from __future__ import annotations

import functools
import heapq
import math
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from itertools import islice
from typing import Any, NamedTuple

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Date,
    Double,
    Integer,
    Select,
    Time,
    Uuid,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.orm import Session

from marketplace.booking.models import CareRequest
from marketplace.booking.slots import VisitHistory
from marketplace.clock import BUSINESS_ZONE
from marketplace.geo.geometry import KM_PER_DEGREE_LATITUDE, distance_km
from marketplace.matching.score import (
    Terms,
    bound_key_sql,
    continuity,
    continuity_sql,
    fit,
    fit_sql,
    proximity,
    rank_key,
    score,
    soonness,
)
from marketplace.practitioners import availability
from marketplace.practitioners.match_index import REACH_SLACK
from marketplace.practitioners.models import (
    WEEKDAY_FIRST_STARTS,
    WEEKDAY_LAST_STARTS,
    MatchEntry,
    Mode,
    Profession,
)
from marketplace.practitioners.vocabulary import SPECIALTY_BY_SLUG

PAGE = 40
FIRST_PAGE_FACTOR = 1.25  # the first page holds this many times the answer's size
RANKED_FACTOR = 2  # a home ranking statement reads this many times the answer (a page at least)
# Within 80 km at UK latitudes the flat-earth distance is within 0.5% of the great-circle one.
FLAT_EARTH_SHRINK = 0.99
ONE_DAY = timedelta(days=1)
MIDNIGHT = clock_time()
MAX = clock_time.max


@dataclass(frozen=True)
class Window:
    """The request's window in London days: soonness counts whole days from its first day."""

    first_day: date
    days: int
    earliest_local_time: clock_time
    # The earliest a slot can start on the first day: the window's opening on the slot grid, in
    # London time (`time.max` when the grid puts it on the next day).
    first_local_start: clock_time

    @classmethod
    def of(cls, care_request: CareRequest) -> Window:
        earliest = care_request.earliest.astimezone(BUSINESS_ZONE)
        last_day = care_request.latest.astimezone(BUSINESS_ZONE).date()
        days = max(1, (last_day - earliest.date()).days + 1)
        first_start = availability.ceil_to_grid(care_request.earliest.astimezone(UTC))
        first_start = first_start.astimezone(BUSINESS_ZONE)
        first_local_start = first_start.time() if first_start.date() == earliest.date() else MAX
        return cls(earliest.date(), days, earliest.time(), first_local_start)

    @property
    def last_day(self) -> date:
        return self.first_day + timedelta(days=self.days - 1)

    @property
    def later_days(self) -> int:
        """How many days after the first `first_open_day` looks at: the rest of a week at most."""
        return min(8, self.days) - 1

    @property
    def first_open_days(self) -> list[int]:
        """The values `first_open_day` can take."""
        return [0, *range(1, self.later_days + 1), self.days]

    def values(self) -> dict[str, Any]:
        """Its values of the statements' parameters."""
        one_day = timedelta(days=1)  # the practitioner's dates may be in another time zone
        return {
            "window_days": self.days,
            "earliest_local_time": self.earliest_local_time,
            "first_local_start": self.first_local_start,
            "day_before_window": self.first_day - one_day,
            "day_after_window": self.last_day + one_day,
        }

    def earliest_start(self, open_day: int, opens_at: clock_time) -> datetime:
        """The earliest a first slot can start when `first_open_day` is `open_day` and
        `opens_at` is `opens_at`: that London time on that day, in UTC, as
        `availability.expand` reads it. Strictly rising with (`open_day`, `opens_at`), so
        candidates read in that order are read in order of it too.

        Only on the night London's clocks go forward (01:00 GMT to 02:00 BST) does the moment
        not rise with the time: zoneinfo reads a time in the lost hour by the clock before the
        change, so 01:30 comes after 02:00 (01:00 UTC). That night times before 02:00 are taken
        at half their time since midnight and later ones at their real moment, an hour less,
        which rises strictly and never passes a slot's start."""
        day = self.first_day + timedelta(days=open_day)
        midnight, lost = _london_day(day)
        if not lost:
            return availability.local_to_utc(day, opens_at, BUSINESS_ZONE)
        since = datetime.combine(day, opens_at) - datetime.combine(day, MIDNIGHT)
        return midnight + max(since - lost, since / 2)

    def days_waited(self, first_slot: datetime) -> int:
        """Whole London days from the window's first day to the first slot's."""
        return (first_slot.astimezone(BUSINESS_ZONE).date() - self.first_day).days


@functools.cache
def _london_day(day: date) -> tuple[datetime, timedelta]:
    """The London midnight that starts the day (in UTC), and the time the day loses when the
    clocks go forward that night (none on other days)."""
    midnight = availability.local_to_utc(day, clock_time(), BUSINESS_ZONE)
    next_midnight = availability.local_to_utc(day + ONE_DAY, clock_time(), BUSINESS_ZONE)
    return midnight, max(timedelta(), ONE_DAY - (next_midnight - midnight))


@dataclass(frozen=True)
class Candidate:
    practitioner_id: uuid.UUID
    distance_km: float | None
    # Its terms at best: fit, proximity and continuity exactly; soonness as if its first slot
    # were on its first open day (the diary, read later, says how soon it really is).
    terms: Terms[float]
    bound: int  # the best rank key it could reach (from the database's ranking)
    earliest_start: datetime  # its first slot cannot start before this (`Window.earliest_start`)


# The request's values in the matching statements, bound when one runs: the SQL of each statement
# is built once per `Shape` and kept, as building it took longer than running it.
SPECIALTY: BindParameter[str] = bindparam("specialty")
CORE_PROFESSION: BindParameter[Profession] = bindparam("core_profession")
TODAY = bindparam("today", type_=Date)
LATITUDE = bindparam("latitude", type_=Double)
LONGITUDE = bindparam("longitude", type_=Double)
KM_PER_DEGREE_LONGITUDE = bindparam("km_per_degree_longitude", type_=Double)
SEEN: BindParameter[list[uuid.UUID]] = bindparam("seen", expanding=True)
ASSESSED: BindParameter[list[uuid.UUID]] = bindparam("assessed", expanding=True)
WINDOW_DAYS = bindparam("window_days", type_=Integer)
EARLIEST_LOCAL_TIME = bindparam("earliest_local_time", type_=Time)
FIRST_LOCAL_START = bindparam("first_local_start", type_=Time)
DAY_BEFORE_WINDOW = bindparam("day_before_window", type_=Date)
DAY_AFTER_WINDOW = bindparam("day_after_window", type_=Date)
OFFSET = bindparam("offset", type_=Integer)
SIZE = bindparam("size", type_=Integer)
TIER_PROFESSION: BindParameter[Profession] = bindparam("tier_profession")
TIER_DAYS = bindparam("tier_days", type_=Integer)
MIDNIGHT_AT = literal(MIDNIGHT, Time)
AFTER = bindparam("after", type_=Uuid)
AFTER_OPENS_AT = bindparam("after_opens_at", type_=Time)
BEFORE_EVERY_ID = uuid.UUID(int=0)


class Shape(NamedTuple):
    """What the SQL of a matching statement depends on; the rest is bound when it runs."""

    dialect: str
    mode: Mode
    first_weekday: int  # of the window's first day
    later_days: int  # how many days after the first `first_open_day` looks at
    with_seen: bool  # the patient has seen someone before
    with_assessed: bool  # someone has assessed the patient

    @classmethod
    def of(
        cls, care_request: CareRequest, window: Window, dialect: str, history: VisitHistory
    ) -> Shape:
        first_weekday = window.first_day.weekday()
        seen, assessed = bool(history.seen), bool(history.assessed)
        return cls(dialect, care_request.mode, first_weekday, window.later_days, seen, assessed)


def request_values(
    care_request: CareRequest, window: Window, today: date, history: VisitHistory
) -> dict[str, Any]:
    """The request's values of the parameters above."""
    values = window.values() | {
        "specialty": care_request.specialty,
        "core_profession": SPECIALTY_BY_SLUG[care_request.specialty].core_to,
        "today": today,
        "seen": sorted(history.seen),
        "assessed": sorted(history.assessed),
    }
    if care_request.mode is Mode.HOME:
        latitude, longitude = care_request.point()
        km_per_degree_longitude = KM_PER_DEGREE_LATITUDE * math.cos(math.radians(latitude))
        values |= {
            "latitude": latitude,
            "longitude": longitude,
            "km_per_degree_longitude": km_per_degree_longitude,
        }
    return values


def reach_contains(dialect: str) -> ColumnElement[bool]:
    """SQL: the entry's reach box contains the patient's point; on PostgreSQL in the form its
    GiST index answers (box_ops index `box @> box`, so the point is a one-point box)."""
    if dialect == "postgresql":
        reach = func.box(
            func.point(MatchEntry.west, MatchEntry.south),
            func.point(MatchEntry.east, MatchEntry.north),
        )
        point = func.point(LONGITUDE, LATITUDE)
        return reach.op("@>")(func.box(point, point))
    return and_(
        MatchEntry.south <= LATITUDE,
        MatchEntry.north >= LATITUDE,
        MatchEntry.west <= LONGITUDE,
        MatchEntry.east >= LONGITUDE,
    )


def _flat_km() -> ColumnElement[float]:
    """SQL: the flat-earth distance from the patient's point to the entry's base."""
    north_km = (MatchEntry.latitude - LATITUDE) * KM_PER_DEGREE_LATITUDE
    east_km = (MatchEntry.longitude - LONGITUDE) * KM_PER_DEGREE_LONGITUDE
    return func.sqrt(north_km * north_km + east_km * east_km)


def candidate_conditions(mode: Mode, dialect: str) -> list[ColumnElement[bool]]:
    """The indexed lookup: entries of the specialty and mode, still listed today; for home visits,
    whose reach contains the patient's point and whose radius does by a generous flat-earth test
    (exact great-circle distances are taken afterwards)."""
    conditions = [
        MatchEntry.specialty == SPECIALTY,
        MatchEntry.mode == mode,
        or_(MatchEntry.listed_until.is_(None), MatchEntry.listed_until >= TODAY),
    ]
    if mode is Mode.HOME:
        generous_radius = MatchEntry.travel_radius_km * REACH_SLACK + 0.1
        conditions += [reach_contains(dialect), _flat_km() <= generous_radius]
    return conditions


@functools.cache
def _candidate_statement(mode: Mode, dialect: str) -> Select[uuid.UUID]:
    return select(MatchEntry.practitioner_id).where(*candidate_conditions(mode, dialect))


def candidate_lookup(
    care_request: CareRequest, today: date, dialect: str
) -> tuple[Select[uuid.UUID], dict[str, Any]]:
    """The bare candidate lookup (what the benchmark compares matching with) and its values."""
    no_history = VisitHistory(frozenset(), frozenset())
    values = request_values(care_request, Window.of(care_request), today, no_history)
    return _candidate_statement(care_request.mode, dialect), values


def _openings(shape: Shape) -> list[tuple[ColumnElement[bool], int, ColumnElement[Any]]]:
    """SQL, the branches of `first_open_day` and `opens_at`, first match wins: (when, first open
    day, the London time that day before which a first slot cannot start)."""
    first_weekday, later_days = shape.first_weekday, shape.later_days
    window_start: ColumnElement[Any] = FIRST_LOCAL_START
    own_start = WEEKDAY_FIRST_STARTS[first_weekday]
    opens_later = [
        (
            WEEKDAY_LAST_STARTS[(first_weekday + day) % 7].is_not(None),
            day,
            func.coalesce(WEEKDAY_FIRST_STARTS[(first_weekday + day) % 7], MIDNIGHT_AT),
        )
        for day in range(1, later_days + 1)
    ]
    dated_opening = and_(
        MatchEntry.dated_from <= DAY_AFTER_WINDOW, MatchEntry.dated_until >= DAY_BEFORE_WINDOW
    )
    starts_on_first_day = WEEKDAY_LAST_STARTS[first_weekday] >= EARLIEST_LOCAL_TIME
    assessed: list[tuple[ColumnElement[bool], int, ColumnElement[Any]]] = []
    if shape.with_assessed:
        assessed = [(MatchEntry.practitioner_id.in_(ASSESSED), 0, window_start)]
    return [
        *assessed,
        (dated_opening, 0, window_start),
        (starts_on_first_day, 0, case((own_start > window_start, own_start), else_=window_start)),
        *opens_later,
    ]


def first_open_day(shape: Shape) -> ColumnElement[int]:
    """SQL: an optimistic count of days from the window's first day to the entry's first
    opening: 0 when an assessment can still start that weekday once the window has started, else
    the next weekday whose hours hold one; 0 when a dated opening is near the window, and for
    practitioners who have assessed the patient (their visit is a follow-up, which the entry's
    weekdays do not time)."""
    branches = [(when, day) for when, day, _ in _openings(shape)]
    return case(*branches, else_=WINDOW_DAYS)


def opens_at(shape: Shape) -> ColumnElement[clock_time]:
    """SQL: the London time on its first open day before which the entry's first slot cannot
    start: the first start that weekday (the start of its first rule holding an assessment) on
    a later day; on the first day, that or the window's first start, whichever is later (just
    the window's for those who assessed the patient and those with a dated opening near it);
    midnight for those with no open day in the window. (`Window.earliest_start` makes a moment
    of it.)"""
    branches = [(when, at) for when, _, at in _openings(shape)]
    return case(*branches, else_=MIDNIGHT_AT)


def bound_terms(shape: Shape) -> Terms[ColumnElement[Any]]:
    """SQL: each candidate's terms at best, never below its real ones: fit and continuity exactly,
    proximity from a distance below the true one (it falls with distance), soonness from the
    first open day (its first slot cannot be sooner)."""
    seen: ColumnElement[float] = literal(continuity(False))
    if shape.with_seen:
        seen = continuity_sql(MatchEntry.practitioner_id.in_(SEEN))
    nearness: ColumnElement[Any] = literal(proximity_of(None))
    if shape.mode is Mode.HOME:
        nearness = proximity(_flat_km() * FLAT_EARTH_SHRINK)
    return Terms(
        fit=fit_sql(MatchEntry.profession == CORE_PROFESSION),
        proximity=nearness,
        soonness=soonness(first_open_day(shape), cast(WINDOW_DAYS, Double)),
        continuity=seen,
    )


def best_possible(shape: Shape) -> ColumnElement[int]:
    """SQL: the best rank key each candidate could reach, never below its real one."""
    return bound_key_sql(bound_terms(shape)).label("best_possible")


@functools.cache
def _ranking_statement(
    shape: Shape,
) -> Select[*tuple[Any, ...]]:
    """Candidates by the best rank key they could reach, then by first open day, then by id;
    `size` rows from `offset`: (id, profession, latitude, longitude, radius, first open day,
    bound).

    Video candidates (ranked here only to check `_video_candidates`) also by the time their first
    open day opens before id, `opens_at` coming before the bound: so by the earliest their first
    slot can start. Home bounds hardly ever tie (distance is measured to the metre and beyond),
    so home ranking leaves it out: it made the statement 40% slower on PostgreSQL (0.5 -> 0.7 ms
    at 10,000 practitioners). `_candidate` takes the opening of the first open day instead, which
    rises with it too."""
    bound = best_possible(shape)
    open_day = first_open_day(shape).label("open_day")
    opening: list[ColumnElement[Any]] = []
    if shape.mode is Mode.VIDEO:
        opening = [opens_at(shape).label("opens_at")]
    return (
        select(
            MatchEntry.practitioner_id,
            MatchEntry.profession,
            MatchEntry.latitude,
            MatchEntry.longitude,
            MatchEntry.travel_radius_km,
            open_day,
            *opening,
            bound,
        )
        .where(*candidate_conditions(shape.mode, shape.dialect))
        .order_by(bound.desc(), open_day, *opening, MatchEntry.practitioner_id)
        .offset(OFFSET)
        .limit(SIZE)
    )


def _candidate(
    row: Sequence[Any], care_request: CareRequest, window: Window, seen: frozenset[uuid.UUID]
) -> Candidate | None:
    """The candidate with its terms at best (proximity now exact, by great-circle distance), or
    None when the patient is outside its radius."""
    practitioner_id, profession, latitude, longitude, radius, open_day, *opening, bound = row
    distance = None
    if care_request.mode is Mode.HOME:
        distance = distance_km(*care_request.point(), latitude, longitude)
        if distance > radius:
            return None
    terms = Terms(
        fit=fit(profession is SPECIALTY_BY_SLUG[care_request.specialty].core_to),
        proximity=proximity_of(distance),
        soonness=soonness(open_day, window.days),
        continuity=continuity(practitioner_id in seen),
    )
    shown_distance = None if distance is None else round(distance, 1)
    [at] = opening or [window.first_local_start if open_day == 0 else MIDNIGHT]
    earliest_start = window.earliest_start(open_day, at)
    return Candidate(practitioner_id, shown_distance, terms, int(bound), earliest_start)


def proximity_of(distance: float | None) -> float:
    """Proximity at a distance; video visits have none and score as on the doorstep."""
    nearness: float = proximity(0.0 if distance is None else distance)
    return nearness


def tier_terms(
    profession: Profession, specialty: str, days: int, window_days: int, seen: bool
) -> Terms[float]:
    """The terms at best of a video practitioner of this profession whose first open day is
    `days` into the window: all exact but soonness, taken on that day."""
    return Terms(
        fit=fit(profession is SPECIALTY_BY_SLUG[specialty].core_to),
        proximity=proximity_of(None),
        soonness=soonness(days, window_days),
        continuity=continuity(seen),
    )


def candidate_pages(
    session: Session,
    care_request: CareRequest,
    window: Window,
    today: date,
    history: VisitHistory,
    limit: int,
) -> Iterator[list[Candidate]]:
    """Candidates, best reachable score first, a page at a time (a page's diaries are read
    together); the first page is a quarter larger than the answer, as a few bounds are not met
    (no free slot on the first open day, or outside the radius after all), and one page costs
    less than two."""
    shape = Shape.of(care_request, window, session.get_bind().dialect.name, history)
    values = request_values(care_request, window, today, history)
    if care_request.mode is Mode.VIDEO:
        candidates = _video_candidates(session, care_request, window, shape, values, history.seen)
    else:
        batch = max(limit * RANKED_FACTOR, PAGE)
        candidates = _home_candidates(
            session, care_request, window, shape, values, history.seen, batch
        )
    size = math.ceil(limit * FIRST_PAGE_FACTOR)
    while page := list(islice(candidates, size)):
        yield page
        size = PAGE


def _home_candidates(
    session: Session,
    care_request: CareRequest,
    window: Window,
    shape: Shape,
    values: dict[str, Any],
    seen: frozenset[uuid.UUID],
    batch: int,
) -> Iterator[Candidate]:
    """Home candidates in the ranking statement's order, `batch` rows per statement: each
    statement scores every entry whose reach holds the patient, however few rows it returns, so
    one reads ahead of the first page (and a page at least)."""
    statement = _ranking_statement(shape)
    offset = 0
    while True:
        rows = session.execute(statement, values | {"offset": offset, "size": batch}).all()
        for row in rows:
            if (candidate := _candidate(row, care_request, window, seen)) is not None:
                yield candidate
        if len(rows) < batch:
            return
        offset += batch


def _video_candidates(
    session: Session,
    care_request: CareRequest,
    window: Window,
    shape: Shape,
    values: dict[str, Any],
    seen: frozenset[uuid.UUID],
) -> Iterator[Candidate]:
    """Video candidates in the order of `_ranking_statement`, without ranking every video entry of
    the specialty: with no distance, a bound takes few values, one per tier (a profession and a
    first open day), so each tier is read in order of the time that day opens (`opens_at`), then
    id, a page at a time, only once the tiers above it are used up (PostgreSQL reads them from the
    covering index of migrations 0014 and 0017); tiers of one bound are merged by the earliest
    their first slot can start, then id. Practitioners seen before are read apart, with their
    continuity."""
    tiers: dict[int, list[Iterator[Candidate]]] = defaultdict(list)

    def terms_and_bound(profession: Profession, days: int, seen: bool) -> tuple[Terms[float], int]:
        terms = tier_terms(profession, care_request.specialty, days, window.days, seen)
        return terms, rank_key(score(terms))

    for profession in Profession:
        for days in window.first_open_days:
            terms, bound = terms_and_bound(profession, days, False)
            tier = values | {"tier_profession": profession, "tier_days": days}
            tiers[bound].append(_tier(session, window, shape, tier, terms, bound))
    if seen:
        rows = session.execute(_seen_entries_statement(shape), values)
        for practitioner_id, profession, days, at in rows:
            terms, bound = terms_and_bound(profession, days, True)
            earliest_start = window.earliest_start(days, at)
            candidate = Candidate(practitioner_id, None, terms, bound, earliest_start)
            tiers[bound].append(iter([candidate]))
    for bound in sorted(tiers, reverse=True):
        yield from heapq.merge(*tiers[bound], key=lambda c: (c.earliest_start, c.practitioner_id))


@functools.cache
def _tier_statement(shape: Shape) -> Select[uuid.UUID, clock_time]:
    """A page of one tier's entries: `size` of them by `opens_at`, then id, after (`after_opens_at`,
    `after`)."""
    at = opens_at(shape)
    conditions = [
        *candidate_conditions(shape.mode, shape.dialect),
        MatchEntry.profession == TIER_PROFESSION,
        first_open_day(shape) == TIER_DAYS,
        tuple_(at, MatchEntry.practitioner_id) > tuple_(AFTER_OPENS_AT, AFTER),
    ]
    if shape.with_seen:
        conditions.append(MatchEntry.practitioner_id.not_in(SEEN))
    return (
        select(MatchEntry.practitioner_id, at)
        .where(*conditions)
        .order_by(at, MatchEntry.practitioner_id)
        .limit(SIZE)
    )


@functools.cache
def _seen_entries_statement(shape: Shape) -> Select[uuid.UUID, Profession, int, clock_time]:
    """The entries of practitioners the patient has seen, with their first open day and the time
    it opens."""
    return (
        select(
            MatchEntry.practitioner_id,
            MatchEntry.profession,
            first_open_day(shape),
            opens_at(shape),
        )
        .where(
            *candidate_conditions(shape.mode, shape.dialect), MatchEntry.practitioner_id.in_(SEEN)
        )
        .order_by(MatchEntry.practitioner_id)
    )


def _tier(
    session: Session,
    window: Window,
    shape: Shape,
    values: dict[str, Any],
    terms: Terms[float],
    bound: int,
) -> Iterator[Candidate]:
    """The entries of one tier in order of `opens_at`, then id, read a page at a time as they
    are needed."""
    days = values["tier_days"]
    after: tuple[clock_time, uuid.UUID] = (MIDNIGHT, BEFORE_EVERY_ID)
    while True:
        page = values | {"after_opens_at": after[0], "after": after[1], "size": PAGE}
        rows = session.execute(_tier_statement(shape), page).all()
        for practitioner_id, at in rows:
            earliest_start = window.earliest_start(days, at)
            yield Candidate(practitioner_id, None, terms, bound, earliest_start)
        if len(rows) < PAGE:
            return
        last_id, last_at = rows[-1]
        after = (last_at, last_id)
