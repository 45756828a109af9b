"""The match entries follow every change that makes a practitioner findable or not."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from flask import Flask
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from marketplace.accounts.models import Role
from marketplace.admin import service as admin
from marketplace.booking.slots import free_slots_of
from marketplace.clock import BUSINESS_ZONE, business_today
from marketplace.geo.geocoding import TableGeocoder
from marketplace.practitioners import service as practitioners
from marketplace.practitioners.match_index import reindex_all, reindex_if_empty
from marketplace.practitioners.models import MatchEntry, Mode, Practitioner, VisitType
from tests.support.factories import make_practitioner, make_user, profile_input


def entries(db: Session, practitioner: Practitioner) -> set[tuple[str, Mode]]:
    db.flush()
    rows = db.execute(
        select(MatchEntry.specialty, MatchEntry.mode).where(
            MatchEntry.practitioner_id == practitioner.id
        )
    )
    return {(specialty, mode) for specialty, mode in rows}


def availability(db: Session, practitioner: Practitioner, **fields: object) -> None:
    practitioners.set_availability(
        db,
        practitioner.user,
        {"timezone": "Europe/London", "weekly": [], "exceptions": [], **fields},
    )


def test_a_listed_practitioner_has_an_entry_per_specialty_and_mode(db: Session) -> None:
    practitioner = make_practitioner(db, specialties=["stroke", "parkinsons"])
    assert entries(db, practitioner) == {
        (slug, mode) for slug in ("stroke", "parkinsons") for mode in (Mode.HOME, Mode.VIDEO)
    }
    home = db.scalars(
        select(MatchEntry).where(
            MatchEntry.practitioner_id == practitioner.id, MatchEntry.mode == Mode.HOME
        )
    ).first()
    assert home is not None
    weekdays = [home.monday_last_start, home.friday_last_start, home.saturday_last_start]
    assert weekdays == [time(16), time(16), None]  # Monday to Friday 09:00-17:00, 60-min visits
    first_starts = [home.monday_first_start, home.friday_first_start, home.saturday_first_start]
    assert first_starts == [time(9), time(9), None]
    assert home.south is not None
    assert home.north is not None
    assert practitioner.latitude is not None
    assert home.south < practitioner.latitude < home.north


def test_unlisted_practitioners_have_none(db: Session) -> None:
    assert entries(db, make_practitioner(db, verified=False)) == set()


def test_suspension_removes_and_reinstatement_restores_them(db: Session) -> None:
    practitioner = make_practitioner(db)
    listed = entries(db, practitioner)
    an_admin = make_user(db, Role.ADMIN)
    admin.suspend_practitioner(db, an_admin, practitioner.id, "complaint", business_today())
    assert entries(db, practitioner) == set()
    admin.reinstate_practitioner(db, an_admin, practitioner.id, "cleared", business_today())
    assert entries(db, practitioner) == listed


def test_profile_changes_rewrite_them(db: Session) -> None:
    practitioner = make_practitioner(db)
    practitioners.save_profile(
        db,
        practitioner.user,
        profile_input(specialties=["stroke"], modes=["video"], base_postcode=None),
        business_today(),
        TableGeocoder(),
    )
    assert entries(db, practitioner) == {("stroke", Mode.VIDEO)}


def test_a_mode_without_hours_has_no_entry_and_dated_openings_count(db: Session) -> None:
    practitioner = make_practitioner(db, specialties=["stroke"])
    video_only = [{"weekday": 2, "start": time(9), "end": time(12), "modes": ["video"]}]
    availability(db, practitioner, weekly=video_only)
    assert entries(db, practitioner) == {("stroke", Mode.VIDEO)}
    on = business_today() + timedelta(days=3)
    dated = {"date": on, "available": True, "start": time(9), "end": time(12), "modes": ["home"]}
    availability(db, practitioner, exceptions=[dated])
    assert entries(db, practitioner) == {("stroke", Mode.HOME)}
    home = db.scalars(select(MatchEntry).where(MatchEntry.practitioner_id == practitioner.id)).one()
    assert (home.wednesday_last_start, home.dated_from, home.dated_until) == (None, on, on)


def test_another_time_zone_may_open_on_any_london_weekday(db: Session) -> None:
    practitioner = make_practitioner(
        db, specialties=["stroke"], modes=["video"], session_minutes=60, assessment_minutes=75
    )
    monday = [{"weekday": 0, "start": time(9), "end": time(12), "modes": ["video"]}]
    availability(db, practitioner, weekly=monday, timezone="Asia/Tokyo")
    [entry] = db.scalars(select(MatchEntry).where(MatchEntry.practitioner_id == practitioner.id))
    assert (entry.monday_last_start, entry.sunday_last_start) == (time.max, time.max)
    assert (entry.monday_first_start, entry.sunday_first_start) == (time.min, time.min)
    # An hour that holds only a follow-up by the clock still counts: their clocks change on
    # other nights than London's, when such hours last longer.
    one_hour = [{"weekday": 6, "start": time(2), "end": time(3), "modes": ["video"]}]
    availability(db, practitioner, weekly=one_hour, timezone="Europe/Paris")
    entries = db.scalars(select(MatchEntry).where(MatchEntry.practitioner_id == practitioner.id))
    assert [(e.monday_last_start, e.sunday_last_start) for e in entries] == [(time.max, time.max)]


def test_the_last_start_leaves_room_for_an_assessment(db: Session) -> None:
    """Weekdays hold the latest an assessment can start (a new patient's first visit); hours
    that hold only a follow-up keep the entry, for patients they have assessed."""
    practitioner = make_practitioner(
        db, specialties=["stroke"], modes=["video"], session_minutes=45, assessment_minutes=75
    )
    weekly = [
        {"weekday": 0, "start": time(9), "end": time(12), "modes": ["video"]},
        {"weekday": 0, "start": time(13), "end": time(13, 30), "modes": ["video"]},
        {"weekday": 1, "start": time(10), "end": time(10, 30), "modes": ["video"]},
        {"weekday": 2, "start": time(10), "end": time(11), "modes": ["video"]},
    ]
    availability(db, practitioner, weekly=weekly)
    entry = db.scalars(
        select(MatchEntry).where(MatchEntry.practitioner_id == practitioner.id)
    ).one()
    # An assessment (75 min) could start at 10:45; the 30-minute hours hold no visit at all, and
    # Wednesday's hour holds a follow-up (45 min) but no assessment.
    weekdays = (entry.monday_last_start, entry.tuesday_last_start, entry.wednesday_last_start)
    assert weekdays == (time(10, 45), None, None)
    availability(db, practitioner, weekly=weekly[3:])
    [entry] = db.scalars(select(MatchEntry).where(MatchEntry.practitioner_id == practitioner.id))
    assert entry.wednesday_last_start is None
    availability(db, practitioner, weekly=weekly[1:3])
    assert entries(db, practitioner) == set()
    just_after_midnight = {"weekday": 2, "start": time(0), "end": time(0, 30), "modes": ["video"]}
    availability(db, practitioner, weekly=[just_after_midnight])  # holds no visit either
    assert entries(db, practitioner) == set()


def test_sunday_night_hours_hold_the_repeated_hour_when_the_clocks_go_back(db: Session) -> None:
    """On 25 October 2026 London's 01:00-02:00 comes twice: a visit can start at 01:30 BST in
    00:00-02:00 hours, so the entry must not say the day's last start is 01:00."""
    practitioner = make_practitioner(db, specialties=["stroke"], modes=["video"])
    night = {"weekday": 6, "start": time(0), "end": time(2), "modes": ["video"]}
    availability(db, practitioner, weekly=[night], horizon_days=365, min_notice_hours=0)
    entry = db.scalars(
        select(MatchEntry).where(MatchEntry.practitioner_id == practitioner.id)
    ).one()
    first_start = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 01:30 BST, the first 01:30
    before = first_start - timedelta(days=1)
    slots = free_slots_of(
        db,
        practitioner,
        first_start,
        first_start + timedelta(hours=2),
        before,
        "video",
        VisitType.ASSESSMENT,
    )
    assert slots[0].start == first_start
    in_london = first_start.astimezone(BUSINESS_ZONE)  # the same instant, given in London time
    assert (
        free_slots_of(
            db,
            practitioner,
            in_london,
            in_london + timedelta(hours=2),
            before,
            "video",
            VisitType.ASSESSMENT,
        )
        == slots
    )
    assert entry.sunday_last_start is not None
    assert entry.sunday_last_start >= first_start.astimezone(BUSINESS_ZONE).time() == time(1, 30)


def test_reindex_all_rebuilds_lost_entries(db: Session) -> None:
    practitioner = make_practitioner(db)
    listed = entries(db, practitioner)
    db.execute(delete(MatchEntry))
    db.expire_all()
    assert reindex_all(db) >= len(listed)
    assert entries(db, practitioner) == listed


def test_an_emptied_index_is_rebuilt_after_upgrading(db: Session) -> None:
    """Migrations that change what entries hold empty them (0015, 0016); `flask db upgrade`
    rebuilds them when listed practitioners have none, and leaves a filled index alone."""
    practitioner = make_practitioner(db)
    listed = entries(db, practitioner)
    db.execute(delete(MatchEntry))
    db.expire_all()
    reindex_if_empty(db)
    assert entries(db, practitioner) == listed
    db.execute(delete(MatchEntry).where(MatchEntry.mode == Mode.VIDEO))
    db.expire_all()
    reindex_if_empty(db)
    assert {mode for _, mode in entries(db, practitioner)} == {Mode.HOME}


def test_db_reindex_command_rebuilds_them(app: Flask, db: Session) -> None:
    practitioner = make_practitioner(db, specialties=["stroke"], modes=["video"])
    db.execute(delete(MatchEntry))
    result = app.test_cli_runner().invoke(args=["db", "reindex"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "1 match entries."
    assert entries(db, practitioner) == {("stroke", Mode.VIDEO)}


def test_reindex_all_writes_the_rows_of_a_place_together(db: Session) -> None:
    """Rows are stored in `place_order` (so a home request reads few table pages); the physical
    order is the row's ctid on PostgreSQL and its rowid on SQLite."""
    for postcode in ("N1 9GU", "SW1A 1AA", "E1 6AN", "W1A 1AA"):
        make_practitioner(db, base_postcode=postcode, specialties=["stroke", "parkinsons"])
    reindex_all(db)
    stored = "ctid" if db.get_bind().dialect.name == "postgresql" else "rowid"
    rows = db.execute(
        select(MatchEntry.specialty, MatchEntry.mode, MatchEntry.latitude).order_by(text(stored))
    ).all()
    assert len(rows) == 16
    assert rows == sorted(rows, key=lambda row: (row[0], row[1], row[2] or 0.0))
