"""Keeping the match entries (the search index matching narrows candidates with) in step.

`reindex` rewrites one practitioner's entries from their profile, listing and availability; the
listing refresh and the availability update call it, so every change that can make someone
findable, or no longer findable, passes through here. `reindex_all` rebuilds every entry (after a
restore, to recover from a bug, or to gather the rows of each place together again).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from marketplace.clock import BUSINESS_ZONE
from marketplace.geo.geometry import bounding_box
from marketplace.practitioners.models import (
    WEEKDAY_FIRST_STARTS,
    WEEKDAY_LAST_STARTS,
    ListingStatus,
    MatchEntry,
    Mode,
    Practitioner,
    VisitType,
)

REACH_SLACK = 1.01  # the reach box is a little generous; exact distances are taken afterwards
SUNDAY = 6
MIDNIGHT = datetime.combine(date.min, time())  # for arithmetic on times of day
WEEKDAY_STARTS = WEEKDAY_FIRST_STARTS + WEEKDAY_LAST_STARTS


def weekly_starts(practitioner: Practitioner, mode: Mode, visit_type: VisitType) -> dict[str, time]:
    """`{"monday_first_start": 09:00, "monday_last_start": 16:00, ...}`: the earliest and the
    latest a visit of the type can start each day by the weekly rules offering the mode (in the
    practitioner's own time): the start of the first rule that holds one, and the latest start in
    any."""
    length = practitioner.visit_length(visit_type)
    starts: dict[str, time] = {}
    for rule in practitioner.weekly_rules:
        start, end = _since_midnight(rule.start_time), _since_midnight(rule.end_time)
        longer = _repeated_hour(rule.weekday, rule.start_time, rule.end_time)
        if mode.value in rule.modes and end - start + longer >= length:
            first = WEEKDAY_FIRST_STARTS[rule.weekday].key
            last = WEEKDAY_LAST_STARTS[rule.weekday].key
            last_start = (MIDNIGHT + min(end, end - length + longer)).time()
            starts[last] = max(starts.get(last, last_start), last_start)
            starts[first] = min(starts.get(first, rule.start_time), rule.start_time)
    return starts


def _since_midnight(moment: time) -> timedelta:
    return datetime.combine(date.min, moment) - MIDNIGHT


def _repeated_hour(weekday: int, start: time, end: time) -> timedelta:
    """An hour for Sunday hours that reach into 01:00-02:00: London's clocks go back at 02:00
    on an October Sunday, so that night those hours last an hour longer."""
    if weekday == SUNDAY and start < time(2) and end > time(1):
        return timedelta(hours=1)
    return timedelta()


def entries_for(practitioner: Practitioner) -> list[MatchEntry]:
    """The entries the practitioner should have: none unless listed; per mode they could be
    free in (a weekly rule that holds a visit, or a dated opening, offers it), one per
    specialty."""
    if practitioner.status is not ListingStatus.LISTED:
        return []
    entries: list[MatchEntry] = []
    for mode in practitioner.modes:
        dated = [e.on_date for e in practitioner.exceptions if e.available and mode in e.modes]
        # The weekdays hold an assessment's first and last start: the visit a patient new to the
        # practitioner books (matching treats those who assessed the patient apart). In another
        # time zone every day counts from its start till its end: their weekdays and hours may
        # fall on other London days, and their clocks change on other nights.
        starts = weekly_starts(practitioner, mode, VisitType.ASSESSMENT)
        weekly = bool(starts or weekly_starts(practitioner, mode, VisitType.FOLLOW_UP))
        if not weekly and not dated:
            continue
        if weekly and practitioner.timezone != BUSINESS_ZONE.key:
            starts = {column.key: time.max for column in WEEKDAY_LAST_STARTS}
            starts |= {column.key: time.min for column in WEEKDAY_FIRST_STARTS}
        # Every weekday is set: a rewritten entry keeps its key, so the database row is updated,
        # and a column left unset would keep its old value.
        weekdays = {column.key: None for column in WEEKDAY_STARTS} | starts
        reach: dict[str, float | int | None] = {}
        if mode is Mode.HOME:
            latitude, longitude = practitioner.latitude, practitioner.longitude
            radius = practitioner.travel_radius_km
            if latitude is None or longitude is None or not radius:
                continue
            box = bounding_box(latitude, longitude, radius * REACH_SLACK + 0.1)
            reach = {
                "latitude": latitude,
                "longitude": longitude,
                "travel_radius_km": radius,
                "south": box.min_latitude,
                "north": box.max_latitude,
                "west": box.min_longitude,
                "east": box.max_longitude,
            }
        entries.extend(
            MatchEntry(
                specialty=slug,
                mode=mode,
                profession=practitioner.profession,
                listed_until=practitioner.listed_until,
                **weekdays,
                dated_from=min(dated, default=None),
                dated_until=max(dated, default=None),
                **reach,
            )
            for slug in practitioner.specialty_slugs
        )
    return entries


def reindex(practitioner: Practitioner) -> None:
    practitioner.match_entries = entries_for(practitioner)


def place_order(entry: MatchEntry) -> tuple[str, str, float, float]:
    """The order `reindex_all` writes entries in: by specialty, mode and place, so the rows one
    home request reads (the entries of its specialty reaching the patient) sit on few table
    pages instead of one page each."""
    return (entry.specialty, entry.mode, entry.latitude or 0.0, entry.longitude or 0.0)


def reindex_all(session: Session) -> int:
    """Rewrite every practitioner's entries, in `place_order`; returns how many there are now."""
    practitioners = session.scalars(
        select(Practitioner).options(
            selectinload(Practitioner.specialties),
            selectinload(Practitioner.weekly_rules),
            selectinload(Practitioner.exceptions),
            selectinload(Practitioner.match_entries),
        )
    ).all()
    fresh = [
        (entry, practitioner)
        for practitioner in practitioners
        for entry in entries_for(practitioner)
    ]
    for practitioner in practitioners:
        practitioner.match_entries = []
    session.flush()  # the old rows go first: the new ones reuse their keys
    fresh.sort(key=lambda pair: place_order(pair[0]))
    for entry, practitioner in fresh:
        practitioner.match_entries.append(entry)  # rows are inserted in the order they are added
    session.flush()
    return len(fresh)


def reindex_if_empty(session: Session) -> None:
    """Fill the entries of a database that has listed practitioners and no entries: before
    entries existed, or after a migration that emptied them to be rebuilt (0015, 0016, 0017)."""
    has_entries = session.scalar(select(MatchEntry.practitioner_id).limit(1)) is not None
    listed = select(Practitioner.id).where(Practitioner.status == ListingStatus.LISTED).limit(1)
    if not has_entries and session.scalar(listed) is not None:
        reindex_all(session)
