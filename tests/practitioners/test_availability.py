"""Expanding weekly rules into UTC intervals, and cutting slots; DST-correct in Europe/London."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from marketplace.practitioners.availability import (
    Interval,
    Opening,
    cut_slots,
    expand,
    find_overlap,
)

LONDON = ZoneInfo("Europe/London")
BOTH = frozenset({"home", "video"})


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def weekly(weekday: int, start: int, end: int, modes: frozenset[str] = BOTH) -> Opening:
    return Opening(time(start), time(end), modes, weekday=weekday)


# 2027-03-28 (Sunday): clocks go forward at 01:00 UTC. 2027-10-31 (Sunday): back at 01:00 UTC.
@pytest.mark.parametrize(
    ("day", "morning_utc", "afternoon_utc"),
    [
        (date(2027, 3, 27), (9, 0), (14, 0)),  # Saturday before: GMT, local = UTC
        (date(2027, 3, 28), (8, 0), (13, 0)),  # the change itself: BST, local = UTC+1
        (date(2027, 3, 29), (8, 0), (13, 0)),
        (date(2027, 10, 30), (8, 0), (13, 0)),  # Saturday before: still BST
        (date(2027, 10, 31), (9, 0), (14, 0)),  # the change itself: GMT again
        (date(2027, 11, 1), (9, 0), (14, 0)),
    ],
)
def test_rules_before_and_after_13_00_keep_local_time_across_dst(
    day: date, morning_utc: tuple[int, int], afternoon_utc: tuple[int, int]
) -> None:
    rules = [weekly(day.weekday(), 9, 12), weekly(day.weekday(), 14, 18)]
    intervals = expand(rules, [], [], LONDON, day, day)
    assert [i.start for i in intervals] == [
        utc(day.year, day.month, day.day, *morning_utc),
        utc(day.year, day.month, day.day, *afternoon_utc),
    ]
    assert [i.start.astimezone(LONDON).time() for i in intervals] == [time(9), time(14)]
    assert [i.end.astimezone(LONDON).time() for i in intervals] == [time(12), time(18)]


def test_a_week_spanning_the_change_keeps_every_day_at_nine_local() -> None:
    rules = [weekly(weekday, 9, 17) for weekday in range(7)]
    intervals = expand(rules, [], [], LONDON, date(2027, 10, 25), date(2027, 11, 7))
    assert len(intervals) == 14
    assert {i.start.astimezone(LONDON).time() for i in intervals} == {time(9)}
    assert {i.end - i.start for i in intervals} == {timedelta(hours=8)}


def test_overnight_hours_on_the_change_day_have_the_real_length() -> None:
    # 00:00-06:00 local on 2027-10-31 lasts seven real hours (01:00-02:00 happens twice).
    intervals = expand([weekly(6, 0, 6)], [], [], LONDON, date(2027, 10, 31), date(2027, 10, 31))
    assert intervals[0].end - intervals[0].start == timedelta(hours=7)
    intervals = expand([weekly(6, 0, 6)], [], [], LONDON, date(2027, 3, 28), date(2027, 3, 28))
    assert intervals[0].end - intervals[0].start == timedelta(hours=5)


def test_a_day_off_and_dated_hours_replace_the_weekly_rule() -> None:
    rules = [weekly(0, 9, 17)]  # Mondays
    monday, next_monday = date(2027, 1, 4), date(2027, 1, 11)
    special = Opening(time(13), time(15), frozenset({"video"}), on_date=next_monday)
    intervals = expand(rules, [monday], [special], LONDON, monday, next_monday)
    assert intervals == [Interval(utc(2027, 1, 11, 13), utc(2027, 1, 11, 15), frozenset({"video"}))]


def test_overlaps_on_one_day_are_found_touching_is_fine() -> None:
    assert find_overlap([weekly(0, 9, 12), weekly(0, 12, 17), weekly(1, 10, 11)]) is None
    found = find_overlap([weekly(2, 9, 13), weekly(2, 12, 17)])
    assert found is not None
    assert {found[0].start, found[1].start} == {time(9), time(12)}


def test_slots_start_on_the_quarter_hour_and_last_one_session() -> None:
    interval = Interval(utc(2027, 1, 4, 9), utc(2027, 1, 4, 11), BOTH)
    slots = list(
        cut_slots([interval], timedelta(minutes=60), utc(2027, 1, 4, 9, 7), utc(2027, 2, 1))
    )
    assert [s.start for s in slots] == [
        utc(2027, 1, 4, 9, 15),
        utc(2027, 1, 4, 9, 30),
        utc(2027, 1, 4, 9, 45),
        utc(2027, 1, 4, 10),
    ]
    assert all(s.end - s.start == timedelta(minutes=60) for s in slots)


def test_slots_respect_mode_window_and_busy_time() -> None:
    home_only = Interval(utc(2027, 1, 4, 9), utc(2027, 1, 4, 12), frozenset({"home"}))
    assert (
        list(cut_slots([home_only], timedelta(hours=1), utc(2027, 1, 1), utc(2027, 2, 1), "video"))
        == []
    )
    busy = [(utc(2027, 1, 4, 10), utc(2027, 1, 4, 10, 30))]
    slots = cut_slots(
        [home_only], timedelta(hours=1), utc(2027, 1, 1), utc(2027, 1, 4, 12), "home", busy
    )
    assert [s.start for s in slots] == [
        utc(2027, 1, 4, 9),
        utc(2027, 1, 4, 10, 30),
        utc(2027, 1, 4, 10, 45),
        utc(2027, 1, 4, 11),
    ]
