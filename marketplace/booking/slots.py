"""Free slots: the one function behind the slots endpoint and matching.

Free = the practitioner's open hours (in the mode) within notice and horizon, minus the time their
bookings hold, each widened by the buffer between visits; two home visits are also kept apart by
the travel buffer.
"""

from __future__ import annotations

import functools
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import ColumnElement, Select, and_, bindparam, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from marketplace.booking.models import TIME_HOLDING, Booking, BookingStatus
from marketplace.errors import ValidationFailed
from marketplace.practitioners.availability import Interval
from marketplace.practitioners.diary import Diary
from marketplace.practitioners.listing import get_listed_practitioner
from marketplace.practitioners.models import (
    MAX_BUFFER_MINUTES,
    MAX_TRAVEL_BUFFER_MINUTES,
    Mode,
    Practitioner,
    VisitType,
)
from marketplace.practitioners.service import available_slots


class HeldTime(NamedTuple):
    """The time a booking holds: what slots need of it, read as plain rows (matching reads a
    few hundred at a time)."""

    id: uuid.UUID
    practitioner_id: uuid.UUID
    mode: Mode
    starts_at: datetime
    ends_at: datetime


def held_bookings(
    session: Session, practitioner_ids: Iterable[uuid.UUID], start: datetime, end: datetime
) -> dict[uuid.UUID, list[HeldTime]]:
    """The time bookings hold near [start, end), per practitioner, in one query."""
    ids = list(practitioner_ids)
    # A booking just outside the range can still block the edge of it by its padding.
    margin = timedelta(minutes=MAX_BUFFER_MINUTES + MAX_TRAVEL_BUFFER_MINUTES)
    by_practitioner: dict[uuid.UUID, list[HeldTime]] = defaultdict(list)
    if not ids:
        return by_practitioner
    values = {"practitioner_ids": ids, "start": start - margin, "end": end + margin}
    for row in session.execute(_held_statement(), values):
        held = HeldTime(*row)
        by_practitioner[held.practitioner_id].append(held)
    return by_practitioner


@functools.cache  # built once: matching reads held time for every page of candidates
def _held_statement() -> Select[uuid.UUID, uuid.UUID, Mode, datetime, datetime]:
    return select(
        Booking.id, Booking.practitioner_id, Booking.mode, Booking.starts_at, Booking.ends_at
    ).where(
        Booking.practitioner_id.in_(bindparam("practitioner_ids", expanding=True)),
        Booking.status.in_(TIME_HOLDING),
        Booking.starts_at < bindparam("end"),  # untyped: they take the columns' UTC type
        Booking.ends_at > bindparam("start"),
    )


def busy_periods(
    practitioner: Diary, bookings: Iterable[HeldTime], mode: str | None
) -> list[tuple[datetime, datetime]]:
    buffer = timedelta(minutes=practitioner.buffer_minutes)
    travel = timedelta(minutes=practitioner.travel_buffer_minutes)
    periods = []
    for booking in bookings:
        home_to_home = booking.mode is Mode.HOME and mode == Mode.HOME.value
        pad = buffer + travel if home_to_home else buffer
        periods.append((booking.starts_at - pad, booking.ends_at + pad))
    return periods


def free_slots(
    practitioner: Diary,
    start: datetime,
    end: datetime,
    now: datetime,
    mode: str | None,
    bookings: Iterable[HeldTime],
    visit_type: VisitType = VisitType.FOLLOW_UP,
) -> list[Interval]:
    """Free slots in `mode`, as long as the visit type; with no mode, each slot lists the modes
    it is free in (a home visit needs the travel buffer after another home visit, a video call
    does not)."""
    held = list(bookings)
    if mode is not None:
        return list(iter_free_slots(practitioner, start, end, now, mode, held, visit_type))
    modes_by_start: dict[tuple[datetime, datetime], set[str]] = defaultdict(set)
    for each in (Mode.HOME.value, Mode.VIDEO.value):
        busy = busy_periods(practitioner, held, each)
        for slot in available_slots(practitioner, start, end, now, each, busy, visit_type):
            modes_by_start[(slot.start, slot.end)].add(each)
    return [
        Interval(start_, end_, frozenset(modes))
        for (start_, end_), modes in sorted(modes_by_start.items())
    ]


def iter_free_slots(
    practitioner: Diary,
    start: datetime,
    end: datetime,
    now: datetime,
    mode: str,
    bookings: Iterable[HeldTime],
    visit_type: VisitType = VisitType.FOLLOW_UP,
) -> Iterator[Interval]:
    """Free slots in one mode, one at a time, in time order."""
    busy = busy_periods(practitioner, bookings, mode)
    return available_slots(practitioner, start, end, now, mode, busy, visit_type)


def free_slots_of(
    session: Session,
    practitioner: Practitioner,
    start: datetime,
    end: datetime,
    now: datetime,
    mode: str | None,
    visit_type: VisitType = VisitType.FOLLOW_UP,
) -> list[Interval]:
    bookings = held_bookings(session, [practitioner.id], start, end)[practitioner.id]
    return free_slots(practitioner, start, end, now, mode, bookings, visit_type)


def _assessed(
    by: datetime | ColumnElement[datetime] | InstrumentedAttribute[datetime],
    visits: type[Booking] = Booking,
) -> ColumnElement[bool]:
    """SQL: the booking (of `visits`, the table or an alias of it) is an assessment that took
    place or still holds its time, and is over by `by`, so a visit with that practitioner from
    then on is a follow-up."""
    return and_(
        visits.visit_type == VisitType.ASSESSMENT,
        visits.status.in_([*TIME_HOLDING, BookingStatus.COMPLETED]),
        visits.ends_at <= by,
    )


def follow_ups_before_assessment(
    session: Session, patient_id: uuid.UUID, practitioner_id: uuid.UUID
) -> list[uuid.UUID]:
    """The pair's follow-ups that hold time but start before any assessment of the pair is
    over (what moving a visit must not leave behind)."""
    assessment = aliased(Booking)
    assessed_first = (
        select(assessment.id)
        .where(
            assessment.patient_id == Booking.patient_id,
            assessment.practitioner_id == Booking.practitioner_id,
            _assessed(Booking.starts_at, assessment),
        )
        .exists()
    )
    return list(
        session.scalars(
            select(Booking.id).where(
                Booking.patient_id == patient_id,
                Booking.practitioner_id == practitioner_id,
                Booking.visit_type == VisitType.FOLLOW_UP,
                Booking.status.in_(TIME_HOLDING),
                ~assessed_first,
            )
        )
    )


def _seen(now: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
    """SQL: the booking is a visit the patient has had (continuity of care)."""
    return and_(
        Booking.starts_at < now,
        Booking.status.in_([BookingStatus.COMPLETED, BookingStatus.CONFIRMED]),
    )


def assessed_by(
    session: Session, patient_id: uuid.UUID, practitioner_ids: Iterable[uuid.UUID], by: datetime
) -> frozenset[uuid.UUID]:
    """Those of the practitioners whose assessment of the patient is over by `by`
    (`_assessed`)."""
    rows = session.scalars(
        select(Booking.practitioner_id).where(
            Booking.patient_id == patient_id,
            Booking.practitioner_id.in_(list(practitioner_ids)),
            _assessed(by),
        )
    )
    return frozenset(rows)


def visit_type_for(
    session: Session, patient_id: uuid.UUID | None, practitioner_id: uuid.UUID, start: datetime
) -> VisitType:
    """A first visit is an assessment; a visit starting once one is over is a follow-up."""
    if patient_id is None or not assessed_by(session, patient_id, [practitioner_id], start):
        return VisitType.ASSESSMENT
    return VisitType.FOLLOW_UP


@dataclass(frozen=True)
class VisitHistory:
    """Practitioners the patient has had a visit with (`_seen`), and those whose assessment of
    them is over by a given time (`_assessed`)."""

    seen: frozenset[uuid.UUID]
    assessed: frozenset[uuid.UUID]


def visit_history(
    session: Session, patient_id: uuid.UUID, now: datetime, assessed_by: datetime
) -> VisitHistory:
    """The patient's `VisitHistory`, from one read of their bookings. Matching asks which
    assessments are over by its window's start: one still to come then leaves that
    practitioner's visits assessments (slots long enough for either)."""
    values = {"patient_id": patient_id, "now": now, "assessed_by": assessed_by}
    rows = session.execute(_history_statement(), values).all()
    return VisitHistory(
        frozenset(row.practitioner_id for row in rows if row.seen),
        frozenset(row.practitioner_id for row in rows if row.assessed),
    )


@functools.cache  # built once: every match reads it
def _history_statement() -> Select[uuid.UUID, bool, bool]:
    # Untyped: they take the column's UTC type.
    seen, assessed = _seen(bindparam("now")), _assessed(bindparam("assessed_by"))
    return select(Booking.practitioner_id, seen.label("seen"), assessed.label("assessed")).where(
        Booking.patient_id == bindparam("patient_id"), or_(seen, assessed)
    )


MAX_SLOT_RANGE = timedelta(days=31)


def public_slots(
    session: Session,
    practitioner_id: uuid.UUID,
    start: datetime,
    end: datetime,
    mode: str | None,
    now: datetime,
    today: date,
    visit_type: VisitType = VisitType.FOLLOW_UP,
) -> list[Interval]:
    """Free slots of a listed practitioner, for anyone to see (at most 31 days at a time), as
    long as the visit type."""
    if end <= start:
        raise ValidationFailed.for_field("to", "`to` must be after `from`.")
    if end - start > MAX_SLOT_RANGE:
        raise ValidationFailed.for_field("to", "Ask for at most 31 days at a time.")
    practitioner = get_listed_practitioner(session, practitioner_id, today)
    return free_slots_of(
        session, practitioner, start.astimezone(UTC), end.astimezone(UTC), now, mode, visit_type
    )
