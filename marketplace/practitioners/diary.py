"""A practitioner's diary: what their free slots are worked out from.

`Diary` is what the slot functions read. A `Practitioner` is one; matching, which works out the
slots of dozens of candidates per request, reads plain copies (`DiaryCopy`) with the profiles it
checks (`with_diaries`, `diaries_of`) instead of loading each profile with its rules as objects.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Date, Select, bindparam, select
from sqlalchemy.orm import Session

from marketplace.practitioners.models import (
    AvailabilityException,
    Mode,
    Practitioner,
    VisitType,
    WeeklyRule,
    offered_modes,
    visit_length,
)


class WeeklyHours(Protocol):
    """A weekly rule (`WeeklyRule`, `RuleRow`)."""

    @property
    def weekday(self) -> int: ...
    @property
    def start_time(self) -> time: ...
    @property
    def end_time(self) -> time: ...
    @property
    def modes(self) -> Sequence[str]: ...


class DatedHours(Protocol):
    """A day off, or a date's own hours (`AvailabilityException`, `ExceptionRow`)."""

    @property
    def on_date(self) -> date: ...
    @property
    def available(self) -> bool: ...
    @property
    def start_time(self) -> time | None: ...
    @property
    def end_time(self) -> time | None: ...
    @property
    def modes(self) -> Sequence[str]: ...


class Diary(Protocol):
    """What free slots are worked out from: the zone, notice, horizon, the last day of the
    listing, buffers, modes and visit lengths of the profile, with its weekly rules and
    exceptions (`Practitioner`, `DiaryCopy`)."""

    @property
    def timezone(self) -> str: ...
    @property
    def min_notice_hours(self) -> int: ...
    @property
    def horizon_days(self) -> int: ...
    @property
    def listed_until(self) -> date | None: ...
    @property
    def buffer_minutes(self) -> int: ...
    @property
    def travel_buffer_minutes(self) -> int: ...
    @property
    def modes(self) -> Sequence[Mode]: ...
    @property
    def weekly_rules(self) -> Sequence[WeeklyHours]: ...
    @property
    def exceptions(self) -> Sequence[DatedHours]: ...
    def visit_length(self, visit_type: VisitType) -> timedelta: ...


class RuleRow(NamedTuple):
    weekday: int
    start_time: time
    end_time: time
    modes: list[str]


class ExceptionRow(NamedTuple):
    on_date: date
    available: bool
    start_time: time | None
    end_time: time | None
    modes: list[str]


# The profile's columns a copy is made of, under the names of its fields.
DIARY_COLUMNS = (
    Practitioner.timezone,
    Practitioner.min_notice_hours,
    Practitioner.horizon_days,
    Practitioner.buffer_minutes,
    Practitioner.travel_buffer_minutes,
    Practitioner.session_minutes,
    Practitioner.assessment_minutes,
    Practitioner.offers_home,
    Practitioner.offers_video,
    Practitioner.listed_until,
)


@dataclass
class DiaryCopy:
    """A practitioner's diary as plain values (a `Diary`)."""

    timezone: str
    min_notice_hours: int
    horizon_days: int
    buffer_minutes: int
    travel_buffer_minutes: int
    session_minutes: int
    assessment_minutes: int
    offers_home: bool
    offers_video: bool
    listed_until: date | None
    weekly_rules: list[RuleRow] = field(default_factory=list)
    exceptions: list[ExceptionRow] = field(default_factory=list)

    @classmethod
    def of(cls, row: Any) -> DiaryCopy:
        """From a row holding `DIARY_COLUMNS` (and maybe more)."""
        return cls(*(getattr(row, column.key) for column in DIARY_COLUMNS))

    @property
    def modes(self) -> list[Mode]:
        return offered_modes(self.offers_home, self.offers_video)

    def visit_length(self, visit_type: VisitType) -> timedelta:
        return visit_length(visit_type, self.session_minutes, self.assessment_minutes)


RULE_COLUMNS = tuple(getattr(WeeklyRule, name) for name in RuleRow._fields)
EXCEPTION_COLUMNS = tuple(getattr(AvailabilityException, name) for name in ExceptionRow._fields)


# The dates whose exceptions `with_diaries` asks about, bound when it runs.
DIARY_FROM = bindparam("diary_from", type_=Date)
DIARY_TO = bindparam("diary_to", type_=Date)


def with_diaries(profiles: Select[*tuple[Any, ...]]) -> Select[*tuple[Any, ...]]:
    """`profiles` (practitioners, with an `id` column) with the columns of their diaries, a row
    per weekly rule, and whether they have exceptions dated `DIARY_FROM`..`DIARY_TO`."""
    has_exceptions = (
        select(AvailabilityException.id)
        .where(
            AvailabilityException.practitioner_id == Practitioner.id,
            AvailabilityException.on_date.between(DIARY_FROM, DIARY_TO),
        )
        .exists()
    )
    return profiles.add_columns(
        *DIARY_COLUMNS, has_exceptions.label("has_exceptions"), *RULE_COLUMNS
    ).outerjoin(WeeklyRule, WeeklyRule.practitioner_id == Practitioner.id)


def diaries_of(
    session: Session, rows: Sequence[Any], first: date, last: date
) -> dict[uuid.UUID, DiaryCopy]:
    """Each practitioner's diary from the rows of a `with_diaries` statement, with their
    exceptions dated first..last (one more query, for those who have any). first and last must
    be the dates the statement ran with as `DIARY_FROM` and `DIARY_TO`: its `has_exceptions`
    asked about those."""
    diaries: dict[uuid.UUID, DiaryCopy] = {}
    with_exceptions = []
    for row in rows:
        diary = diaries.get(row.id)
        if diary is None:
            diary = diaries[row.id] = DiaryCopy.of(row)
            if row.has_exceptions:
                with_exceptions.append(row.id)
        if row.weekday is not None:
            diary.weekly_rules.append(RuleRow(*(getattr(row, c.key) for c in RULE_COLUMNS)))
    if with_exceptions:
        exceptions = session.execute(
            _exceptions_statement(),
            {"practitioner_ids": with_exceptions, "diary_from": first, "diary_to": last},
        )
        for practitioner_id, *exception in exceptions:
            diaries[practitioner_id].exceptions.append(ExceptionRow(*exception))
    return diaries


@functools.cache
def _exceptions_statement() -> Select[*tuple[Any, ...]]:
    return select(AvailabilityException.practitioner_id, *EXCEPTION_COLUMNS).where(
        AvailabilityException.practitioner_id.in_(bindparam("practitioner_ids", expanding=True)),
        AvailabilityException.on_date.between(DIARY_FROM, DIARY_TO),
    )
