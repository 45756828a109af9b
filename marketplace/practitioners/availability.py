"""Availability rules expanded into concrete UTC intervals, and cut into bookable slots.

Rules are kept in the practitioner's local time and expanded date by date in their zone, so a
"Mon 09:00-17:00" rule means 09:00 local on both sides of a DST change (08:00 or 09:00 UTC).
Pure functions: no database, no clock.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SLOT_GRID = timedelta(minutes=15)


@dataclass(frozen=True)
class Opening:
    """Open hours in local time: a weekly rule (weekday set) or one date's hours (on_date set)."""

    start: time
    end: time
    modes: frozenset[str]
    weekday: int | None = None
    on_date: date | None = None


@dataclass(frozen=True)
class Interval:
    start: datetime  # aware, UTC
    end: datetime
    modes: frozenset[str]


def find_overlap(openings: Sequence[Opening]) -> tuple[Opening, Opening] | None:
    """Two openings on the same weekday (or date) whose hours overlap; touching is fine."""
    by_day: dict[object, list[Opening]] = {}
    for opening in openings:
        by_day.setdefault((opening.weekday, opening.on_date), []).append(opening)
    for same_day in by_day.values():
        ordered = sorted(same_day, key=lambda opening: opening.start)
        for earlier, later in itertools.pairwise(ordered):
            if later.start < earlier.end:
                return earlier, later
    return None


def local_to_utc(day: date, moment: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, moment, tzinfo=zone).astimezone(UTC)


def _dates(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def expand(
    weekly: Iterable[Opening],
    days_off: Iterable[date],
    dated: Iterable[Opening],
    zone: ZoneInfo,
    first: date,
    last: date,
) -> list[Interval]:
    """Open intervals in UTC for local dates first..last inclusive, in time order.

    A date with a day off, or with its own hours, ignores the weekly rules for that date.
    """
    weekly_by_day: dict[int, list[Opening]] = {}
    for opening in weekly:
        if opening.weekday is not None:
            weekly_by_day.setdefault(opening.weekday, []).append(opening)
    dated_by_date: dict[date, list[Opening]] = {}
    for opening in dated:
        if opening.on_date is not None:
            dated_by_date.setdefault(opening.on_date, []).append(opening)
    closed = set(days_off)

    intervals = []
    for day in _dates(first, last):
        if day in closed:
            continue
        openings = dated_by_date.get(day) or weekly_by_day.get(day.weekday(), [])
        for opening in openings:
            start = local_to_utc(day, opening.start, zone)
            end = local_to_utc(day, opening.end, zone)
            if end > start:
                intervals.append(Interval(start, end, opening.modes))
    intervals.sort(key=lambda interval: interval.start)
    return intervals


def ceil_to_grid(moment: datetime) -> datetime:
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    steps = -((midnight - moment) // SLOT_GRID)
    return midnight + steps * SLOT_GRID


def cut_slots(
    intervals: Iterable[Interval],
    length: timedelta,
    not_before: datetime,
    not_after: datetime,
    mode: str | None = None,
    busy: Sequence[tuple[datetime, datetime]] = (),
) -> Iterator[Interval]:
    """Slots of `length` starting on the 15-minute grid inside the intervals, starting no
    earlier than `not_before`, ending no later than `not_after`, clear of every busy period,
    and offering `mode` when given; one at a time, in time order (matching needs only the first
    few)."""
    for interval in intervals:
        if mode is not None and mode not in interval.modes:
            continue
        start = ceil_to_grid(max(interval.start, not_before))
        limit = min(interval.end, not_after)
        while start + length <= limit:
            end = start + length
            if not any(busy_start < end and start < busy_end for busy_start, busy_end in busy):
                yield Interval(start, end, interval.modes)
            start += SLOT_GRID
