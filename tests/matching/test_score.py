"""The score's one promise to matching: a candidate's exact score never exceeds the bound it was
ranked on, neither the database's (`best_possible`, every candidate) nor Python's (a video tier),
whatever the profession, specialty, mode, distance, window and wait. Matching stops reading
diaries once no bound can enter the answer, so a score above its bound would silently drop a
better practitioner."""

from __future__ import annotations

import math
from datetime import date, time, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.clock import business_today
from marketplace.geo.geometry import KM_PER_DEGREE_LATITUDE, distance_km
from marketplace.matching.candidates import (
    Shape,
    Window,
    best_possible,
    first_open_day,
    proximity_of,
    tier_terms,
)
from marketplace.matching.score import (
    WEIGHTS,
    Terms,
    continuity,
    fit,
    rank_key,
    score,
    soonness,
)
from marketplace.practitioners.models import MatchEntry, Mode, Practitioner, Profession
from marketplace.practitioners.vocabulary import SPECIALTY_BY_SLUG, SPECIALTY_SLUGS
from tests.support.factories import make_practitioner

RADIUS_KM = 80  # the largest travel radius
SPECIALTIES = {
    Profession.PHYSIOTHERAPIST: [s for s in SPECIALTY_SLUGS if s != "chronic_pain"],
    Profession.NEUROMUSCULAR_THERAPIST: ["chronic_pain", "stroke", "trigger_point"],
}


@pytest.fixture
def practitioners(db: Session) -> dict[Profession, Practitioner]:
    return {
        profession: make_practitioner(
            db, profession=profession, specialties=specialties, travel_radius_km=RADIUS_KM
        )
        for profession, specialties in SPECIALTIES.items()
    }


def test_the_weights_add_up_to_a_hundred() -> None:
    assert sum(WEIGHTS.values()) == 100
    assert tuple(WEIGHTS) == Terms._fields


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # the rows are only read
)
@given(
    profession=st.sampled_from(list(Profession)),
    mode=st.sampled_from(list(Mode)),
    seen=st.booleans(),
    north_km=st.floats(-RADIUS_KM, RADIUS_KM),
    east_km=st.floats(-RADIUS_KM, RADIUS_KM),
    days_ahead=st.integers(1, 14),
    window_days=st.integers(1, 28),
    earliest=st.sampled_from([time(0), time(8, 59), time(9), time(12, 5), time(16, 1), time(23)]),
    data=st.data(),
)
def test_the_exact_score_never_exceeds_either_bound(
    db: Session,
    practitioners: dict[Profession, Practitioner],
    profession: Profession,
    mode: Mode,
    seen: bool,
    north_km: float,
    east_km: float,
    days_ahead: int,
    window_days: int,
    earliest: time,
    data: st.DataObject,
) -> None:
    practitioner = practitioners[profession]
    assert practitioner.latitude is not None
    assert practitioner.longitude is not None
    specialty = data.draw(st.sampled_from(SPECIALTIES[profession]), label="specialty")
    latitude = practitioner.latitude + north_km / KM_PER_DEGREE_LATITUDE
    km_per_degree_longitude = KM_PER_DEGREE_LATITUDE * math.cos(math.radians(latitude))
    longitude = practitioner.longitude + east_km / km_per_degree_longitude
    distance = distance_km(latitude, longitude, practitioner.latitude, practitioner.longitude)
    if mode is Mode.HOME and distance > RADIUS_KM:
        return  # not a candidate
    first_day: date = business_today() + timedelta(days=days_ahead)
    window = Window(first_day, window_days, earliest, earliest)
    shape = Shape("any", mode, first_day.weekday(), window.later_days, seen, False)
    values = window.values() | {
        "specialty": specialty,
        "core_profession": SPECIALTY_BY_SLUG[specialty].core_to,
        "seen": [practitioner.id] if seen else [],
        "latitude": latitude,
        "longitude": longitude,
        "km_per_degree_longitude": km_per_degree_longitude,
    }
    statement = select(first_open_day(shape), best_possible(shape)).where(
        MatchEntry.practitioner_id == practitioner.id,
        MatchEntry.specialty == specialty,
        MatchEntry.mode == mode,
    )
    open_day, bound = db.execute(statement, values).one()
    if open_day >= window_days:
        return  # no hours in the window: never evaluated
    waited = data.draw(st.integers(open_day, window_days - 1), label="days to the first slot")
    exact = Terms(
        fit=fit(profession is SPECIALTY_BY_SLUG[specialty].core_to),
        proximity=proximity_of(distance if mode is Mode.HOME else None),
        soonness=soonness(waited, window_days),
        continuity=continuity(seen),
    )
    assert rank_key(score(exact)) <= bound
    if mode is Mode.VIDEO:
        tier = tier_terms(profession, specialty, open_day, window_days, seen)
        assert rank_key(score(exact)) <= rank_key(score(tier))
        assert abs(rank_key(score(tier)) - bound) <= 1  # the same bound, but for rounding
