"""Eligibility (each rule flipped on its own), ranking, reasons, continuity, video."""

from __future__ import annotations

import itertools
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.accounts.models import Role
from marketplace.admin import service as admin
from marketplace.booking.models import BookingStatus, CareRequest
from marketplace.booking.slots import free_slots_of
from marketplace.clock import BUSINESS_ZONE, business_today
from marketplace.db import refresh_statistics, utcnow
from marketplace.geo.geometry import KM_PER_DEGREE_LATITUDE, bounding_box, distance_km
from marketplace.matching import candidates, score
from marketplace.matching import service as matching
from marketplace.matching.service import describe_slot, match_practitioners
from marketplace.practitioners import service as practitioners
from marketplace.practitioners.listing import listed_clause
from marketplace.practitioners.match_index import reindex
from marketplace.practitioners.models import MatchEntry, Mode, Practitioner, VisitType
from tests.support.accounts import logged_in
from tests.support.care_requests import request_at
from tests.support.factories import make_booking, make_practitioner, make_user


def moved(practitioner: Practitioner, km_north: float) -> Practitioner:
    """The practitioner with their base `km_north` of where it was."""
    assert practitioner.latitude is not None
    practitioner.latitude += km_north / KM_PER_DEGREE_LATITUDE
    reindex(practitioner)
    return practitioner


def opens_at_one(db: Session, practitioner: Practitioner) -> None:
    """Weekdays 13:00-17:00 instead of the factory's 09:00-17:00."""
    weekly = [
        {"weekday": day, "start": time(13), "end": time(17), "modes": ["home", "video"]}
        for day in range(5)
    ]
    availability = {"timezone": "Europe/London", "weekly": weekly, "exceptions": []}
    practitioners.set_availability(db, practitioner.user, availability)


def matched(db: Session, request: CareRequest, **options: Any) -> list[uuid.UUID]:
    """The ids of the matched practitioners, best first."""
    now = utcnow()
    found = match_practitioners(db, request, now=now, today=business_today(now), **options)
    return [match.practitioner.id for match in found]


def test_geometry() -> None:
    assert distance_km(51.5074, -0.1278, 53.4808, -2.2426) == pytest.approx(262, abs=3)
    box = bounding_box(51.5, -0.1, 10)  # everything within 10 km lies inside the box
    assert distance_km(51.5, -0.1, box.max_latitude, -0.1) == pytest.approx(10)
    assert distance_km(51.5, -0.1, 51.5, box.max_longitude) >= 10


class TestEligibility:
    def test_a_fitting_practitioner_matches(self, db: Session) -> None:
        practitioner = make_practitioner(db, travel_radius_km=10)
        assert matched(db, request_at(db, 3)) == [practitioner.id]

    def test_unlisted_is_excluded(self, db: Session) -> None:
        make_practitioner(db, verified=False)
        assert matched(db, request_at(db, 3)) == []

    def test_suspended_is_excluded(self, db: Session) -> None:
        practitioner = make_practitioner(db)
        admin.suspend_practitioner(
            db, make_user(db, Role.ADMIN), practitioner.id, "x", business_today()
        )
        assert matched(db, request_at(db, 3)) == []

    def test_a_deactivated_account_is_excluded_at_once(self, db: Session) -> None:
        practitioner = make_practitioner(db)
        practitioner.user.is_active = False  # no listing refresh: the rule is re-checked
        db.flush()
        assert matched(db, request_at(db, 3)) == []

    def test_an_expired_credential_is_excluded_before_the_nightly_check(self, db: Session) -> None:
        today = business_today()
        last_day = today + timedelta(days=7)
        make_practitioner(db, expires_on=last_day)
        request = request_at(db, 3)
        now = utcnow()
        assert len(match_practitioners(db, request, now=now, today=today)) == 1
        after = last_day + timedelta(days=1)
        assert match_practitioners(db, request, now=now, today=after) == []

    def test_wrong_mode_is_excluded(self, db: Session) -> None:
        make_practitioner(db, modes=["video"], base_postcode="SW1A 1AA", travel_radius_km=10)
        assert matched(db, request_at(db, 3)) == []

    def test_wrong_specialty_is_excluded(self, db: Session) -> None:
        make_practitioner(db, specialties=["stroke"])
        assert matched(db, request_at(db, 3)) == []

    def test_just_outside_the_radius_is_excluded(self, db: Session) -> None:
        make_practitioner(db, travel_radius_km=5)
        assert matched(db, request_at(db, 5.1)) == []
        assert len(matched(db, request_at(db, 4.9))) == 1

    def test_no_free_slot_in_the_window_is_excluded(self, db: Session) -> None:
        make_practitioner(db, weekly=[])
        assert matched(db, request_at(db, 1)) == []

    def test_days_off_over_the_whole_window_exclude(self, db: Session) -> None:
        practitioner = make_practitioner(db, specialties=["parkinsons", "stroke"])
        monday = business_today() + timedelta(days=7 - business_today().weekday())
        window = [monday + timedelta(days=day) for day in range(5)]  # their Monday to Friday
        start = datetime.combine(monday, time(0), tzinfo=BUSINESS_ZONE)
        request = request_at(db, 1, earliest=start, latest=start + timedelta(days=5))
        assert matched(db, request) == [practitioner.id]
        days_off = [{"date": day, "available": False} for day in window]
        weekly = [
            {"weekday": day, "start": time(9), "end": time(17), "modes": ["home", "video"]}
            for day in range(5)
        ]

        def diary(exceptions: list[dict[str, Any]]) -> None:
            availability = {"timezone": "Europe/London", "weekly": weekly, "exceptions": exceptions}
            practitioners.set_availability(db, practitioner.user, availability)

        diary(days_off)
        assert matched(db, request) == []
        evening = {"date": window[2], "available": True, "start": time(18), "end": time(19)}
        diary([*days_off[:2], evening | {"modes": ["home"]}])
        [match] = match_practitioners(db, request, now=utcnow(), today=business_today())
        local_start = match.next_slots[0].start.astimezone(BUSINESS_ZONE)
        assert (local_start.date(), local_start.time()) == (window[2], time(18))

    def test_hours_only_in_the_other_mode_do_not_count(self, db: Session) -> None:
        video_hours = [
            {"weekday": d, "start": time(9), "end": time(17), "modes": ["video"]} for d in range(7)
        ]
        make_practitioner(db, weekly=video_hours)
        assert matched(db, request_at(db, 1)) == []


class TestRanking:
    def test_closer_ranks_higher_with_readable_reasons(self, db: Session) -> None:
        near = make_practitioner(db, travel_radius_km=20)
        far = make_practitioner(db, base_postcode="N1 9GU", travel_radius_km=20)
        now = utcnow()
        found = match_practitioners(db, request_at(db, 0.5), now=now, today=business_today(now))
        assert [m.practitioner.id for m in found] == [near.id, far.id]
        best = found[0]
        assert best.reasons[0] == "0.5 km away"
        assert "treats parkinson's disease" in best.reasons
        assert best.reasons[-1].startswith("free ")
        assert 0 < found[1].score < best.score <= 100
        assert len(best.next_slots) == 3
        assert best.next_slots[0].end <= best.next_slots[1].start

    def test_nearer_ranks_higher_whatever_the_travel_radius(self, db: Session) -> None:
        """Issue 19: proximity is in absolute km, not a share of each practitioner's radius."""
        near_small_radius = make_practitioner(db, travel_radius_km=5)
        far_large_radius = moved(make_practitioner(db, travel_radius_km=15), km_north=11.1)
        now = utcnow()
        request = request_at(db, 4.3)
        found = match_practitioners(db, request, now=now, today=business_today(now))
        assert [m.practitioner.id for m in found] == [near_small_radius.id, far_large_radius.id]
        assert [m.reasons[0] for m in found] == ["4.3 km away", "6.8 km away"]
        assert found[0].score > found[1].score

    def test_equal_scores_go_to_the_earliest_slot(self, db: Session) -> None:
        made = sorted((make_practitioner(db) for _ in range(2)), key=lambda p: p.id)
        later, earlier = made  # the smaller id is free later: ids must not decide
        opens_at_one(db, later)
        tomorrow = business_today() + timedelta(days=1)
        opens = datetime.combine(tomorrow, time(), BUSINESS_ZONE)
        request = request_at(db, 1, earliest=opens, latest=opens + timedelta(days=7))
        now = utcnow()
        found = match_practitioners(db, request, now=now, today=business_today(now))
        assert [m.practitioner.id for m in found] == [earlier.id, later.id]
        assert found[0].score == found[1].score
        assert found[0].next_slots[0].start < found[1].next_slots[0].start

    def test_continuity_lifts_a_practitioner_seen_before(self, db: Session) -> None:
        near = make_practitioner(db, travel_radius_km=20)
        far = make_practitioner(db, base_postcode="N1 9GU", travel_radius_km=20)
        request = request_at(db, 0.5)
        assert matched(db, request) == [near.id, far.id]
        visited = utcnow() - timedelta(days=30)
        make_booking(
            db,
            far,
            visited,
            visited + timedelta(hours=1),
            status=BookingStatus.COMPLETED,
            patient_id=request.patient_id,
        )
        assert matched(db, request) == [far.id, near.id]
        now = utcnow()
        top = match_practitioners(db, request, now=now, today=business_today(now))[0]
        assert top.reasons[0] == "you have seen them before"

    def test_core_specialty_fits_better(self, db: Session) -> None:
        physio = make_practitioner(
            db,
            specialties=["chronic_pain"],
            modes=["video"],
            base_postcode=None,
            travel_radius_km=None,
        )
        nmt = make_practitioner(
            db,
            profession="neuromuscular_therapist",
            specialties=["chronic_pain"],
            modes=["video"],
            base_postcode=None,
            travel_radius_km=None,
        )
        request = request_at(
            db, 0, mode=Mode.VIDEO, specialty="chronic_pain", latitude=None, longitude=None
        )
        assert matched(db, request) == [nmt.id, physio.id]

    def test_video_ignores_distance(self, db: Session) -> None:
        edinburgh_far = make_practitioner(
            db, modes=["video"], base_postcode=None, travel_radius_km=None
        )
        request = request_at(db, 600, mode=Mode.VIDEO)
        assert matched(db, request) == [edinburgh_far.id]
        now = utcnow()
        match = match_practitioners(db, request, now=now, today=business_today(now))[0]
        assert match.distance_km is None
        assert "video visits" in match.reasons

    def test_a_fully_booked_practitioner_is_excluded(self, db: Session) -> None:
        practitioner = make_practitioner(db)
        request = request_at(db, 1)
        make_booking(db, practitioner, request.earliest, request.latest)
        assert matched(db, request) == []


def test_describe_slot_in_london_time() -> None:
    from datetime import UTC, datetime

    now = datetime(2027, 3, 27, 12, tzinfo=UTC)
    assert describe_slot(datetime(2027, 3, 27, 15, tzinfo=UTC), now) == "today 15:00"
    assert describe_slot(datetime(2027, 3, 28, 9, tzinfo=UTC), now) == "tomorrow 10:00"  # BST
    assert describe_slot(datetime(2027, 3, 31, 9, tzinfo=UTC), now) == "Wed 31 Mar 10:00"


def test_matches_endpoint(client: FlaskClient, app: Flask, db: Session) -> None:
    practitioner = make_practitioner(db, travel_radius_km=15)
    logged_in(client, "patient")
    now = utcnow()
    created = client.post(
        "/api/v1/requests",
        json={
            "mode": "home",
            "specialty": "parkinsons",
            "postcode": "SW1A 2AA",
            "address": "10 Downing Street",
            "earliest": (now + timedelta(days=1)).isoformat(),
            "latest": (now + timedelta(days=8)).isoformat(),
        },
    ).get_json()
    response = client.get(f"/api/v1/requests/{created['id']}/matches")
    assert response.status_code == 200
    [item] = response.get_json()["items"]
    assert item["practitioner_id"] == str(practitioner.id)
    assert item["full_name"] == "Test Person"
    assert item["distance_km"] == 0.0
    assert len(item["next_slots"]) == 3
    stranger = app.test_client()
    logged_in(stranger, "patient")
    assert stranger.get(f"/api/v1/requests/{created['id']}/matches").status_code == 404


def varied_practitioners(db: Session) -> list[Practitioner]:
    """Practitioners of both professions, open on different days from different hours (some off
    the 15-minute grid, some too short for a visit), with different radii and visit lengths, one
    in another time zone; one open only on a date of its own, one mostly booked."""
    import random

    rng = random.Random(7)
    made = []
    outcodes = ["SW1A 1AA", "N1 9GU", "SE1 7PB", "W2 1NY", "E2 9PL", "SW4 7AA", "NW1 8NH"]
    for index in range(14):
        days = rng.sample(range(7), 3)
        weekly = [
            {
                "weekday": day,
                "start": time(9 + index % 5, rng.choice([0, 10, 35])),
                "end": time(9 + index % 5 + rng.choice([3, 8]), rng.choice([0, 50])),
                "modes": ["home", "video"],
            }
            for day in days
        ]
        weekly.append(
            {"weekday": days[0], "start": time(22), "end": time(22, 40), "modes": ["home", "video"]}
        )
        made.append(
            make_practitioner(
                db,
                base_postcode=rng.choice(outcodes),
                travel_radius_km=rng.choice([5, 10, 20]),
                profession=rng.choice(["physiotherapist", "neuromuscular_therapist"]),
                session_minutes=rng.choice([30, 45, 60, 90]),
                assessment_minutes=rng.choice([45, 75, 120]),
                weekly=weekly,
            )
        )
    abroad = make_practitioner(db, weekly=[])
    practitioners.set_availability(
        db,
        abroad.user,
        {
            "timezone": "Europe/Paris",
            "weekly": [
                {"weekday": d, "start": time(8), "end": time(11), "modes": ["home", "video"]}
                for d in range(7)
            ],
            "exceptions": [],
        },
    )
    # One open only on a date of its own, one mostly booked: bounds must not skip either.
    dated_only = make_practitioner(db, weekly=[])
    in_the_window = business_today() + timedelta(days=2)
    practitioners.set_availability(
        db,
        dated_only.user,
        {
            "timezone": "Europe/London",
            "weekly": [],
            "exceptions": [
                {
                    "date": in_the_window,
                    "available": True,
                    "start": time(9),
                    "end": time(18),
                    "modes": ["home", "video"],
                }
            ],
        },
    )
    busy = make_practitioner(db)
    start = utcnow() + timedelta(days=1)
    make_booking(db, busy, start, start + timedelta(days=3))
    return [*made, abroad, dated_only, busy]


def test_the_first_day_counts_while_a_visit_can_still_start(db: Session) -> None:
    """The bound's first open day: the window's first day while a visit can still start on it,
    and not once the day's hours are too short for one (so the bound is tight, yet never below
    the real first slot)."""

    practitioner = make_practitioner(db, specialties=["stroke"], modes=["video"])
    today = business_today()
    monday = today + timedelta(days=7 - today.weekday())  # Mon-Fri 09:00-17:00, 60-min visits

    def first_open_day(first_day: date, earliest: time) -> int | None:
        window = candidates.Window(first_day, 7, earliest, earliest)
        shape = candidates.Shape(
            "any", Mode.VIDEO, first_day.weekday(), window.later_days, False, False
        )
        opening = candidates.first_open_day(shape)
        statement = select(opening).where(MatchEntry.practitioner_id == practitioner.id)
        return db.scalar(statement, window.values())

    assert first_open_day(monday, time(16)) == 0
    assert first_open_day(monday, time(16, 1)) == 1
    assert first_open_day(monday + timedelta(days=4), time(16, 1)) == 3  # Friday to Monday
    start = datetime.combine(monday, time(16), tzinfo=BUSINESS_ZONE)
    [slot] = free_slots_of(db, practitioner, start, start + timedelta(hours=1), utcnow(), "video")
    assert slot.start == start  # the real first slot the bound must not pass over


def test_paged_search_finds_the_same_best_as_evaluating_everyone(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:

    *_, dated_only, _ = varied_practitioners(db)
    # Entries time an assessment; these two have assessed each patient below (one has seen them,
    # one sees them next month), and their evening hour holds only a follow-up, which the bound
    # must still count.
    evenings = [
        {"weekday": day, "start": start, "end": end, "modes": ["home", "video"]}
        for day in range(7)
        for start, end in ((time(9), time(12)), (time(22), time(22, 40)))
    ]
    assessors = [
        make_practitioner(db, session_minutes=30, assessment_minutes=75, weekly=evenings)
        for _ in range(2)
    ]
    monkeypatch.setattr(candidates, "PAGE", 2)
    monkeypatch.setattr(candidates, "FIRST_PAGE_FACTOR", 1)
    monkeypatch.setattr(candidates, "RANKED_FACTOR", 1)
    evaluate = matching._evaluate

    def never_above_the_bound(candidate: Any, *rest: Any) -> Any:
        match = evaluate(candidate, *rest)
        assert match is None or score.rank_key(match.score) <= candidate.bound
        assert match is None or match.next_slots[0].start >= candidate.earliest_start
        return match

    monkeypatch.setattr(matching, "_evaluate", never_above_the_bound)
    now = utcnow()
    tomorrow = datetime.combine(business_today(now) + timedelta(days=1), time(), BUSINESS_ZONE)
    opening_times = [now + timedelta(days=1), tomorrow, tomorrow + timedelta(hours=16, minutes=50)]
    days_ahead = itertools.count(30)  # a coming assessment a day: they never overlap
    for mode, opens in itertools.product(Mode, opening_times):
        request = request_at(db, 1.5, mode=mode, earliest=opens, latest=opens + timedelta(days=7))
        seen_by, seeing_next = assessors
        past, coming = now - timedelta(days=30), now + timedelta(days=next(days_ahead))
        make_booking(
            db,
            seen_by,
            past,
            past + timedelta(minutes=75),
            status=BookingStatus.COMPLETED,
            patient_id=request.patient_id,
            visit_type=VisitType.ASSESSMENT,
        )
        make_booking(
            db,
            seeing_next,
            coming,
            coming + timedelta(minutes=75),
            patient_id=request.patient_id,
            visit_type=VisitType.ASSESSMENT,
        )
        everyone = match_practitioners(db, request, now=now, today=business_today(now), limit=1000)
        assert {a.id for a in assessors} <= {m.practitioner.id for m in everyone}
        best_five = match_practitioners(db, request, now=now, today=business_today(now), limit=5)
        assert [m.practitioner.id for m in best_five] == [m.practitioner.id for m in everyone[:5]]
        if mode is Mode.VIDEO:
            assert dated_only.id in {m.practitioner.id for m in everyone}
        assert [m.score for m in everyone] == sorted((m.score for m in everyone), reverse=True)


@pytest.mark.parametrize("mode", list(Mode))
def test_paged_search_finds_an_earlier_slot_among_equal_bounds_on_a_later_page(
    db: Session, monkeypatch: pytest.MonkeyPatch, mode: Mode
) -> None:
    """Equal scores go to the earliest slot, so an equal bound on a later page, whose id comes
    last, can still win: the search must not stop at the first equal bound."""

    made = sorted((make_practitioner(db) for _ in range(5)), key=lambda p: p.id)
    *later, earliest = made  # read last: the ranking reads equal bounds in id order
    for practitioner in later:
        opens_at_one(db, practitioner)
    monkeypatch.setattr(candidates, "PAGE", 2)
    monkeypatch.setattr(candidates, "FIRST_PAGE_FACTOR", 1)
    monkeypatch.setattr(candidates, "RANKED_FACTOR", 1)
    tomorrow = datetime.combine(business_today() + timedelta(days=1), time(), BUSINESS_ZONE)
    # At their door, where a home bound is met exactly (elsewhere it is a little above the score).
    request = request_at(db, 0, mode=mode, earliest=tomorrow, latest=tomorrow + timedelta(days=7))
    assert matched(db, request, limit=1) == [earliest.id]
    assert matched(db, request, limit=2)[0] == earliest.id


def a_weekday_ahead() -> date:
    """A weekday at least two days ahead, so a minimum notice of 12 hours never reaches it."""
    day = business_today() + timedelta(days=2)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


@pytest.mark.parametrize("mode", list(Mode))
def test_a_first_slot_later_than_its_earliest_start_ties_with_one_read_after_it(
    db: Session, monkeypatch: pytest.MonkeyPatch, mode: Mode
) -> None:
    """A candidate read early (its hours open at 09:00) may be booked till its first slot is
    13:00, where a candidate read after it (hours from 13:00) with a smaller id ties with it and
    wins on id: the search must not stop at an earliest start equal to the last slot kept unless
    the id comes after too."""

    wins, booked = sorted((make_practitioner(db) for _ in range(2)), key=lambda p: p.id)
    opens_at_one(db, wins)
    monkeypatch.setattr(candidates, "PAGE", 2)
    monkeypatch.setattr(candidates, "FIRST_PAGE_FACTOR", 1)
    monkeypatch.setattr(candidates, "RANKED_FACTOR", 1)
    day = a_weekday_ahead()
    pad = timedelta(minutes=45 if mode is Mode.HOME else 15)  # the buffer (and travel buffer)
    nine, one = (datetime.combine(day, time(hour), BUSINESS_ZONE) for hour in (9, 13))
    make_booking(db, booked, nine, one - pad, mode=mode)
    opens = datetime.combine(day, time(), BUSINESS_ZONE)
    request = request_at(db, 0, mode=mode, earliest=opens, latest=opens + timedelta(days=7))
    now = utcnow()
    found = match_practitioners(db, request, now=now, today=business_today(now), limit=2)
    assert [m.next_slots[0].start for m in found] == [one, one]
    assert matched(db, request, limit=1) == [wins.id]


def test_equal_video_bounds_are_read_by_first_start_and_the_search_stops_early(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Equal video bounds (a tier shares one) are read by the earliest each first slot can start
    (the hours' first start that day), so once the answer is full of slots at 09:00, those whose
    hours open at 13:00 are not evaluated (the search used to evaluate the whole tier). Home
    bounds hardly ever tie, and home ranking does not read the hours' first starts."""

    made = [make_practitioner(db) for _ in range(10)]
    for practitioner in made[:6]:
        opens_at_one(db, practitioner)
    monkeypatch.setattr(candidates, "PAGE", 2)
    monkeypatch.setattr(candidates, "FIRST_PAGE_FACTOR", 1)
    monkeypatch.setattr(candidates, "RANKED_FACTOR", 1)
    evaluated: list[uuid.UUID] = []
    evaluate = matching._evaluate

    def counted(candidate: Any, *rest: Any) -> Any:
        evaluated.append(candidate.practitioner_id)
        return evaluate(candidate, *rest)

    monkeypatch.setattr(matching, "_evaluate", counted)
    opens = datetime.combine(a_weekday_ahead(), time(), BUSINESS_ZONE)
    request = request_at(db, mode=Mode.VIDEO, earliest=opens, latest=opens + timedelta(days=7))
    at_nine = sorted(p.id for p in made[6:])
    assert matched(db, request, limit=2) == at_nine[:2]
    assert set(evaluated) <= set(at_nine)


def test_earliest_starts_rise_and_never_pass_a_slot_when_the_clocks_change() -> None:
    """`Window.earliest_start` is read in order of (first open day, time it opens), so it must
    rise strictly with them, across midnights too, and never pass the moment
    `availability.expand` gives that London time, including the nights the clocks change (29
    March and 25 October 2026)."""
    from marketplace.practitioners.availability import local_to_utc

    for first_day in (date(2026, 3, 27), date(2026, 10, 23)):
        window = candidates.Window(first_day, 5, time(), time())
        times = [time(hour, minute) for hour in range(24) for minute in range(0, 60, 5)]
        times.append(time.max)
        starts = []
        for day in range(5):
            for moment in times:
                start = window.earliest_start(day, moment)
                real = local_to_utc(first_day + timedelta(days=day), moment, BUSINESS_ZONE)
                assert start <= real
                if moment.hour >= 3:  # away from the change it is the moment itself
                    assert start == real
                starts.append(start)
        assert all(earlier < later for earlier, later in itertools.pairwise(starts))


def test_video_tiers_read_candidates_in_the_order_of_ranking_them_all(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Video candidates come tier by tier (profession, first open day; those seen before apart),
    in the order the ranking statement gives when it ranks every video entry at once, those who
    assessed the patient included."""
    from marketplace.booking.slots import visit_history

    everyone = varied_practitioners(db)
    monkeypatch.setattr(candidates, "PAGE", 2)  # tiers are read a page at a time
    now = utcnow()
    hours_ahead = itertools.count(1)  # one visit an hour: the patient's never overlap
    for window_days in (1.5, 2.5, 4, 9):
        request = request_at(
            db, mode=Mode.VIDEO, latest=now + timedelta(days=window_days), specialty="stroke"
        )
        for seen in everyone[::3]:  # of both professions: some share a bound with a tier
            visited = now - timedelta(days=30)
            make_booking(
                db,
                seen,
                visited,
                visited + timedelta(hours=1),
                status=BookingStatus.COMPLETED,
                patient_id=request.patient_id,
            )
        for assessor in everyone[1::6]:  # assessed before the window opens, not seen yet
            coming = now + timedelta(hours=next(hours_ahead))
            assert coming + timedelta(hours=1) <= request.earliest
            make_booking(
                db,
                assessor,
                coming,
                coming + timedelta(hours=1),
                patient_id=request.patient_id,
                visit_type=VisitType.ASSESSMENT,
            )
        history = visit_history(db, request.patient_id, now, request.earliest)
        assert (len(history.seen), len(history.assessed - history.seen)) == (6, 3)
        window = candidates.Window.of(request)
        shape = candidates.Shape.of(request, window, db.get_bind().dialect.name, history)
        values = candidates.request_values(request, window, business_today(now), history)
        ranking = candidates._ranking_statement(shape)
        ranked = db.execute(ranking, values | {"offset": 0, "size": 1000}).all()
        tiers = candidates._video_candidates(db, request, window, shape, values, history.seen)
        assert [(c.practitioner_id, c.bound) for c in tiers] == [(r[0], r[-1]) for r in ranked]
        assert len(ranked) == len(everyone)


def test_a_practitioner_read_twice_is_matched_once(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index can be rewritten between two reads, so an entry may come back (in another tier
    or on another page): it is evaluated once."""

    practitioner = make_practitioner(db)
    request = request_at(db, 0.5)
    read_pages = candidates.candidate_pages

    def every_page_twice(*args: Any) -> Any:
        for page in read_pages(*args):
            yield page
            yield page

    monkeypatch.setattr(matching, "candidate_pages", every_page_twice)
    assert matched(db, request) == [practitioner.id]


def test_sqlite_checks_a_page_of_candidates_by_key_once_it_has_statistics(db: Session) -> None:
    """Without statistics SQLite guesses that the listing status narrows more than a page of
    ids, and reads every listed practitioner to check a page; `flask db upgrade` and `demo load`
    refresh them."""
    if db.get_bind().dialect.name != "sqlite":
        pytest.skip("SQLite's planner: PostgreSQL's autovacuum keeps its own statistics")
    made = [make_practitioner(db) for _ in range(3)]
    ids = [p.id for p in made] + [uuid.uuid4() for _ in range(22)]  # a first page: 25
    page = select(Practitioner.id).where(Practitioner.id.in_(ids), listed_clause(business_today()))

    def plan() -> str:
        sql = page.compile(db.get_bind(), compile_kwargs={"literal_binds": True})
        rows = db.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}").all()
        return " ".join(str(row[-1]) for row in rows)

    assert "USING INDEX ix_practitioners_status" in plan()  # the guess, before
    refresh_statistics(db)
    counted = db.connection().exec_driver_sql("SELECT tbl FROM sqlite_stat1").scalars().all()
    assert "practitioners" in counted
    assert "ix_practitioners_status" not in plan()  # (on 100,000 it reads them by key)
