"""Bookings: instant booking, claiming open requests, cancel, reschedule, complete, no-show.

Every function takes a session, may flush, and never commits. The database has the last word on
overlaps (exclusion constraints on PostgreSQL, triggers inside an IMMEDIATE transaction on
SQLite): the free-slot check here gives a clear answer in the common case, and a refused write
becomes the same 409 when two requests race.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketplace.accounts.acting_for import acts_for, carers_of, patient_for, patients_acted_for
from marketplace.accounts.models import Role, User
from marketplace.audit.service import record_audit
from marketplace.booking.care_requests import RequestNotOpen
from marketplace.booking.models import (
    REMINDER_TEMPLATES,
    TIME_HOLDING,
    Booking,
    BookingStatus,
    CareRequest,
    Reminder,
    ReminderKind,
    ReminderStatus,
    RequestStatus,
)
from marketplace.booking.slots import (
    follow_ups_before_assessment,
    free_slots,
    held_bookings,
    visit_type_for,
)
from marketplace.booking.visit_facts import VisitFacts
from marketplace.clock import business_today
from marketplace.db import insert_on_conflict
from marketplace.errors import Conflict, NotFound, ValidationFailed
from marketplace.geo.geocoding import Geocoder, geocode
from marketplace.geo.geometry import distance_km
from marketplace.notifications.service import (
    OutboxEntry,
    booking_recipients,
    drop_pending,
    queue_notifications,
)
from marketplace.pagination import Page, paginate
from marketplace.practitioners.listing import (
    get_listed_practitioner,
    listing_ends,
    require_listed,
)
from marketplace.practitioners.models import ListingStatus, Mode, Practitioner, VisitType
from marketplace.practitioners.service import find_profile

VIDEO_ROOM_BYTES = 16  # 128 bits: a meeting link nobody can guess
PRACTITIONER_UNAVAILABLE = "practitioner_unavailable"  # a cancellation's code


class SlotUnavailable(Conflict):
    code = "slot_unavailable"
    message = "That time is not free; choose another slot."


class AssessmentRequired(Conflict):
    code = "assessment_required"
    message = "A first visit with this practitioner is an assessment: book that before follow-ups."


class PatientBusy(Conflict):
    code = "patient_busy"
    message = "The patient already has a visit at that time."


class OutcomeTooEarly(Conflict):
    code = "visit_not_over"
    message = "It is too early to record how the visit went."


class BookingNotActive(Conflict):
    code = "booking_not_active"
    message = "This booking is no longer active."


class RequestTaken(RequestNotOpen):
    message = "This request has already been taken or is no longer open."


class RequestNeedsAddress(Conflict):
    code = "request_needs_address"
    message = (
        "This home request was made before an address was asked for, so it cannot be handed "
        "over; its patient can book from their matches."
    )


@dataclass(frozen=True)
class BookingPolicy:
    late_cancellation: timedelta = timedelta(hours=24)
    video_base_url: str = "https://meet.jit.si"
    early_reminder: timedelta = timedelta(hours=24)
    late_reminder: timedelta = timedelta(hours=2)
    no_show_grace: timedelta = timedelta(minutes=15)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> BookingPolicy:
        return cls(
            late_cancellation=timedelta(hours=config["LATE_CANCELLATION_HOURS"]),
            video_base_url=config["VIDEO_BASE_URL"],
            early_reminder=timedelta(hours=config["REMINDER_EARLY_HOURS"]),
            late_reminder=timedelta(hours=config["REMINDER_LATE_HOURS"]),
            no_show_grace=timedelta(minutes=config["NO_SHOW_GRACE_MINUTES"]),
        )

    def reminder_leads(self) -> dict[ReminderKind, timedelta]:
        return {ReminderKind.EARLY: self.early_reminder, ReminderKind.LATE: self.late_reminder}


DEFAULT_POLICY = BookingPolicy()


@dataclass(frozen=True)
class BookingInput:
    practitioner_id: uuid.UUID
    start: datetime
    mode: Mode
    patient_id: uuid.UUID | None = None  # a carer booking for a patient of theirs
    request_id: uuid.UUID | None = None
    address: str | None = None
    postcode: str | None = None
    visit_type: VisitType | None = None  # None: an assessment first, then follow-ups

    def digest(self) -> str:
        """What the patient asked for, to tell a retried request from a reused key."""
        fields = {
            "practitioner_id": str(self.practitioner_id),
            "start": self.start.astimezone(UTC).isoformat(),
            "mode": self.mode.value,
            "request_id": str(self.request_id) if self.request_id else None,
            "visit_type": self.visit_type.value if self.visit_type else None,
            "address": self.address,
            "postcode": self.postcode,
        }
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


# --- reading -------------------------------------------------------------------------------


def _is_party(session: Session, booking: Booking, user: User) -> bool:
    if user.role is Role.PRACTITIONER:
        profile = find_profile(session, user)
        return profile is not None and booking.practitioner_id == profile.id
    return acts_for(session, user, booking.patient_id)


def visible_booking(session: Session, viewer: User, booking_id: uuid.UUID) -> Booking:
    """The booking, for its patient (or their carer), its practitioner or an admin; 404 for
    anyone else."""
    booking = session.get(Booking, booking_id)
    if booking is None:
        raise NotFound("No such booking.")
    if viewer.role is Role.ADMIN or _is_party(session, booking, viewer):
        return booking
    raise NotFound("No such booking.")


def read_booking(session: Session, viewer: User, booking_id: uuid.UUID) -> Booking:
    """`visible_booking` for reading it; an admin's read (the home address) is audited."""
    booking = visible_booking(session, viewer, booking_id)
    if viewer.role is Role.ADMIN:
        record_audit(
            session,
            actor_id=viewer.id,
            action="booking.viewed",
            subject_type="booking",
            subject_id=booking.id,
        )
    return booking


def own_bookings(
    session: Session,
    viewer: User,
    status: BookingStatus | None,
    limit: int,
    cursor: str | None,
) -> Page[Booking]:
    """The viewer's bookings (as patient, as a carer of patients, or as practitioner), soonest
    first."""
    profile = find_profile(session, viewer)
    mine: ColumnElement[bool] = Booking.patient_id.in_(patients_acted_for(session, viewer))
    if profile is not None:
        mine = or_(mine, Booking.practitioner_id == profile.id)
    query = select(Booking).where(mine)
    if status is not None:
        query = query.where(Booking.status == status)
    return paginate(session, query, Booking.starts_at, Booking.id, limit, cursor)


def shows_address_to(booking: Booking, viewer: User | None, *, patient_side: bool) -> bool:
    """The patient's side (the patient and their carers) and admins always; the practitioner
    only while the visit is confirmed."""
    if patient_side or (viewer is not None and viewer.role is Role.ADMIN):
        return True
    return booking.status is BookingStatus.CONFIRMED


def video_url(booking: Booking, policy: BookingPolicy) -> str | None:
    """The meeting link, while the visit holds time (never logged)."""
    if booking.video_room is None or not booking.holds_time:
        return None
    return meeting_link(booking.video_room, policy)


def meeting_link(room: str, policy: BookingPolicy) -> str:
    """The link to a meeting room under the configured base URL (never logged)."""
    return f"{policy.video_base_url.rstrip('/')}/{room}"


# --- rules shared by booking and claiming ----------------------------------------------------


def _require_free_slot(
    session: Session,
    practitioner: Practitioner,
    start: datetime,
    mode: Mode,
    now: datetime,
    visit_type: VisitType,
    ignoring: uuid.UUID | None = None,
) -> datetime:
    """The end of the slot of the visit type that starts at `start`, or 409 if that is not a
    free slot (within notice, horizon, open hours, buffers and travel buffers)."""
    end = start + practitioner.visit_length(visit_type)
    bookings = [
        b
        for b in held_bookings(session, [practitioner.id], start, end)[practitioner.id]
        if b.id != ignoring
    ]
    slots = free_slots(practitioner, start, end, now, mode.value, bookings, visit_type)
    if not any(slot.start == start for slot in slots):
        raise SlotUnavailable()
    return end


def _choose_visit_type(
    session: Session,
    patient_id: uuid.UUID,
    practitioner_id: uuid.UUID,
    requested: VisitType | None,
    start: datetime,
) -> VisitType:
    """An assessment first; follow-ups once it is over. Asking for a follow-up that would start
    before an assessment has ended is refused; asking for a new assessment (a reassessment) is
    allowed."""
    natural = visit_type_for(session, patient_id, practitioner_id, start)
    if requested is VisitType.FOLLOW_UP and natural is VisitType.ASSESSMENT:
        raise AssessmentRequired()
    return requested or natural


def patient_held_times(
    session: Session,
    patient_id: uuid.UUID,
    start: datetime,
    end: datetime,
    ignoring: uuid.UUID | None = None,
) -> list[tuple[datetime, datetime]]:
    """The times the patient's bookings hold within [start, end)."""
    held = select(Booking.starts_at, Booking.ends_at).where(
        Booking.patient_id == patient_id,
        Booking.status.in_(TIME_HOLDING),
        Booking.starts_at < end,
        Booking.ends_at > start,
    )
    if ignoring is not None:
        held = held.where(Booking.id != ignoring)
    return [(row.starts_at, row.ends_at) for row in session.execute(held)]


def _require_patient_free(
    session: Session,
    patient_id: uuid.UUID,
    start: datetime,
    end: datetime,
    ignoring: uuid.UUID | None = None,
) -> None:
    if patient_held_times(session, patient_id, start, end, ignoring):
        raise PatientBusy()


def _require_in_reach(practitioner: Practitioner, latitude: float, longitude: float) -> None:
    if practitioner.latitude is None or practitioner.longitude is None:
        raise ValidationFailed.for_field("mode", "This practitioner does not make home visits.")
    distance = distance_km(latitude, longitude, practitioner.latitude, practitioner.longitude)
    if distance > (practitioner.travel_radius_km or 0):
        raise ValidationFailed.for_field(
            "postcode",
            f"This address is {distance:.1f} km away, beyond the practitioner's travel radius"
            f" of {practitioner.travel_radius_km} km.",
        )


def _require_mode(practitioner: Practitioner, mode: Mode) -> None:
    if mode not in practitioner.modes:
        raise ValidationFailed.for_field("mode", f"This practitioner does not offer {mode} visits.")


def lock_diaries(session: Session, practitioner_id: uuid.UUID, patient_id: uuid.UUID) -> None:
    """Serialise changes to one practitioner's diary, then one patient's (always in this order,
    so two transactions never wait on each other): the exclusion constraints refuse overlapping
    time, but buffers and a retried Idempotency-Key need the check and the write to be one step.
    SQLite's IMMEDIATE transactions are serial already."""
    for model, row_id in ((Practitioner, practitioner_id), (User, patient_id)):
        session.execute(select(model.id).where(model.id == row_id).with_for_update())


@contextmanager
def _refused_overlaps() -> Iterator[None]:
    """Turn the database's refusal of an overlap into the 409 the client can act on."""
    try:
        yield
    except IntegrityError as exc:
        text = str(exc.orig)
        if "ex_bookings_patient_no_overlap" in text:
            raise PatientBusy() from exc
        if "ex_bookings_no_overlap" in text:
            raise SlotUnavailable() from exc
        raise


def _insert(session: Session, booking: Booking) -> None:
    with _refused_overlaps(), session.begin_nested():
        session.add(booking)


def _add_reminders(
    session: Session, booking: Booking, now: datetime, policy: BookingPolicy
) -> None:
    """Pending reminders for the visit's start, design decision 3. A reminder whose time has
    already come is not written: the confirmation says it all. A reminder dropped for this very
    start (the visit moved away and back) is scheduled again; one already queued is not."""
    rows = [
        {
            "id": uuid.uuid4(),
            "booking_id": booking.id,
            "kind": kind,
            "visit_starts_at": booking.starts_at,
            "send_at": booking.starts_at - lead,
            "status": ReminderStatus.PENDING,
        }
        for kind, lead in policy.reminder_leads().items()
        if booking.starts_at - lead > now
    ]
    if not rows:
        return
    insert = insert_on_conflict(session, Reminder).values(rows)
    session.execute(
        insert.on_conflict_do_update(
            index_elements=[Reminder.booking_id, Reminder.kind, Reminder.visit_starts_at],
            set_={
                "status": ReminderStatus.PENDING,
                "send_at": insert.excluded.send_at,
                "dropped_reason": None,
            },
            where=Reminder.status == ReminderStatus.DROPPED,
        )
    )


def _rewrite_reminders(
    session: Session, booking: Booking, now: datetime, policy: BookingPolicy, reason: str
) -> None:
    """After a change: reminders not yet sent are dropped with the reason, in this transaction;
    a visit that still holds time gets them for its (new) start."""
    session.execute(
        update(Reminder)
        .where(Reminder.booking_id == booking.id, Reminder.status == ReminderStatus.PENDING)
        .values(status=ReminderStatus.DROPPED, dropped_reason=reason)
        .execution_options(synchronize_session=False)
    )
    drop_pending(session, "booking", booking.id, REMINDER_TEMPLATES, reason)
    if booking.holds_time:
        _add_reminders(session, booking, now, policy)


def _tell(
    session: Session,
    booking: Booking,
    event: str,
    practitioner: Practitioner,
    patient_template: str | None = None,
) -> None:
    """Queue the event's message to both parties (and the patient's carers), sent after commit.
    Each row keeps the visit's facts as this event left them, so the text, written when it is
    sent, describes this event even if others followed; no health notes."""
    stamp = f"{booking.sequence}:{booking.status.value}"
    template = f"booking_{event}"
    carers = carers_of(session, [booking.patient_id]).get(booking.patient_id, [])
    queue_notifications(
        session,
        [
            OutboxEntry(
                user_id=to.user_id,
                template=(patient_template or template) if to.patient_side else template,
                subject_type="booking",
                subject_id=booking.id,
                context={
                    "role": to.role,
                    **VisitFacts.of(
                        booking,
                        shows_address=(
                            shows_address_to(booking, None, patient_side=to.patient_side)
                        ),
                    ).to_context(),
                },
                dedupe_key=f"booking:{booking.id}:{event}:{stamp}:{to.key}",
            )
            for to in booking_recipients(booking.patient_id, practitioner.user_id, carers)
        ],
    )


# --- booking ---------------------------------------------------------------------------------


def _replay(session: Session, patient: User, key: str, data: BookingInput) -> Booking | None:
    """The booking this key already made, if any; 422 if the key came with another request."""
    booking = session.scalar(
        select(Booking).where(Booking.patient_id == patient.id, Booking.idempotency_key == key)
    )
    if booking is not None and booking.idempotency_digest != data.digest():
        raise ValidationFailed(
            "This Idempotency-Key was used for a different booking; use a new key.",
            code="idempotency_key_reused",
            details={"fields": {"Idempotency-Key": ["Already used for a different booking."]}},
        )
    return booking


def create_booking(
    session: Session,
    actor: User,
    data: BookingInput,
    *,
    now: datetime,
    today: date,
    geocoder: Geocoder,
    idempotency_key: str | None = None,
    policy: BookingPolicy = DEFAULT_POLICY,
) -> tuple[Booking, bool]:
    """Book a free slot at once (status confirmed) for the actor, or for a patient they are a
    carer of; (booking, created). With an idempotency key a retry returns the first booking
    instead of making another."""
    patient = patient_for(session, actor, data.patient_id)
    lock_diaries(session, data.practitioner_id, patient.id)
    if idempotency_key is not None:
        replayed = _replay(session, patient, idempotency_key, data)
        if replayed is not None:
            return replayed, False
    practitioner = get_listed_practitioner(session, data.practitioner_id, today)
    booking = book_visit(
        session,
        patient,
        practitioner,
        data,
        now=now,
        geocoder=geocoder,
        policy=policy,
        booked_by=actor,
        idempotency_key=idempotency_key,
    )
    return booking, True


def book_visit(
    session: Session,
    patient: User,
    practitioner: Practitioner,
    data: BookingInput,
    *,
    now: datetime,
    geocoder: Geocoder,
    policy: BookingPolicy,
    booked_by: User,
    idempotency_key: str | None = None,
) -> Booking:
    """A confirmed booking of a free slot of a listed practitioner, made by `booked_by` (the
    patient, their carer or the practitioner; the caller has locked both diaries)."""
    _require_mode(practitioner, data.mode)
    booking = Booking(
        id=uuid.uuid4(),
        practitioner_id=practitioner.id,
        patient_id=patient.id,
        mode=data.mode,
        starts_at=data.start,
        status=BookingStatus.CONFIRMED,
        booked_by_id=booked_by.id,
        idempotency_key=idempotency_key,
        idempotency_digest=data.digest() if idempotency_key else None,
    )
    care_request = None
    if data.request_id is not None:
        care_request = _book_own_request(session, patient, data, booking)
    if data.mode is Mode.HOME:
        _place_home_visit(session, booking, practitioner, data, geocoder, care_request)
    booking.visit_type = _choose_visit_type(
        session, patient.id, practitioner.id, data.visit_type, data.start
    )
    booking.ends_at = _require_free_slot(
        session, practitioner, data.start, data.mode, now, booking.visit_type
    )
    _hold(session, booking, practitioner, now, policy)
    return booking


def is_bookable(
    session: Session,
    practitioner: Practitioner,
    patient_id: uuid.UUID,
    start: datetime,
    mode: Mode,
    now: datetime,
    visit_type: VisitType,
) -> bool:
    """Whether `start` is a free slot of the practitioner's and the patient is free then."""
    try:
        end = _require_free_slot(session, practitioner, start, mode, now, visit_type)
        _require_patient_free(session, patient_id, start, end)
    except (SlotUnavailable, PatientBusy):
        return False
    return True


def _hold(
    session: Session,
    booking: Booking,
    practitioner: Practitioner,
    now: datetime,
    policy: BookingPolicy,
    patient_template: str | None = None,
) -> None:
    """Write a confirmed booking whose slot is free: a meeting room for video, the patient's
    diary checked, the row (the database refusing overlaps), its reminders and the messages."""
    if booking.mode is Mode.VIDEO:
        booking.video_room = secrets.token_urlsafe(VIDEO_ROOM_BYTES)
    _require_patient_free(session, booking.patient_id, booking.starts_at, booking.ends_at)
    _insert(session, booking)
    _add_reminders(session, booking, now, policy)
    _tell(session, booking, "confirmed", practitioner, patient_template)


def _place_home_visit(
    session: Session,
    booking: Booking,
    practitioner: Practitioner,
    data: BookingInput,
    geocoder: Geocoder,
    care_request: CareRequest | None,
) -> None:
    """The address to visit: as given, or else the one the patient's request gave."""
    address, raw_postcode = data.address, data.postcode
    if not (address or raw_postcode) and care_request is not None:
        address, raw_postcode = care_request.address, care_request.postcode
    problems: dict[str, list[str]] = {}
    if not address:
        problems["address"] = ["A home visit needs the address to visit."]
    if not raw_postcode:
        problems["postcode"] = ["A home visit needs the address's postcode."]
    if problems:
        raise ValidationFailed(details={"fields": problems})
    assert raw_postcode is not None
    postcode, point = geocode(session, geocoder, raw_postcode)
    _require_in_reach(practitioner, point.latitude, point.longitude)
    booking.address = address
    booking.postcode = postcode
    booking.latitude, booking.longitude = point.latitude, point.longitude


def _book_own_request(
    session: Session, patient: User, data: BookingInput, booking: Booking
) -> CareRequest:
    """Booking from one's own open request marks it booked (only if it is still open)."""
    care_request = session.get(CareRequest, data.request_id)
    if care_request is None or care_request.patient_id != patient.id:
        raise ValidationFailed.for_field("request_id", "No such request of yours.")
    if care_request.mode is not data.mode:
        raise ValidationFailed.for_field("request_id", "The request is for another mode.")
    if not care_request.earliest <= data.start < care_request.latest:
        raise ValidationFailed.for_field("start", "Choose a start inside the request's window.")
    _take_request(session, care_request)
    booking.request_id = care_request.id
    return care_request


def _take_request(session: Session, care_request: CareRequest) -> None:
    """Open -> booked in one conditional update: of two racing takers, one changes the row."""
    taken = session.execute(
        update(CareRequest)
        .where(CareRequest.id == care_request.id, CareRequest.status == RequestStatus.OPEN)
        .values(status=RequestStatus.BOOKED)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise RequestTaken()
    session.refresh(care_request)


def claim_request(
    session: Session,
    practitioner_user: User,
    request_id: uuid.UUID,
    start: datetime,
    *,
    now: datetime,
    today: date,
    policy: BookingPolicy = DEFAULT_POLICY,
) -> Booking:
    """A fitting practitioner takes an open request at a start inside its window; first wins."""
    profile = require_listed(session, find_profile(session, practitioner_user), today)
    care_request = session.get(CareRequest, request_id)
    if care_request is None:
        raise NotFound("No such request.")
    lock_diaries(session, profile.id, care_request.patient_id)
    practitioner = get_listed_practitioner(session, profile.id, today)
    if care_request.status is not RequestStatus.OPEN:
        raise RequestTaken()
    _require_fit(practitioner, care_request)
    visit_type = visit_type_for(session, care_request.patient_id, practitioner.id, start)
    end = start + practitioner.visit_length(visit_type)
    if start < care_request.earliest or end > care_request.latest:
        raise ValidationFailed.for_field("start", "Choose a start inside the request's window.")
    booking = Booking(
        id=uuid.uuid4(),
        practitioner_id=practitioner.id,
        patient_id=care_request.patient_id,
        request_id=care_request.id,
        mode=care_request.mode,
        starts_at=start,
        visit_type=visit_type,
        ends_at=_require_free_slot(
            session, practitioner, start, care_request.mode, now, visit_type
        ),
        status=BookingStatus.CONFIRMED,
        booked_by_id=practitioner_user.id,
        address=care_request.address,
        postcode=care_request.postcode,
        latitude=care_request.latitude,
        longitude=care_request.longitude,
    )
    _take_request(session, care_request)
    _hold(session, booking, practitioner, now, policy, patient_template="request_claimed")
    return booking


def _require_fit(practitioner: Practitioner, care_request: CareRequest) -> None:
    _require_mode(practitioner, care_request.mode)
    if care_request.specialty not in practitioner.specialty_slugs:
        raise ValidationFailed.for_field("request_id", "You do not list this request's specialty.")
    if care_request.mode is Mode.HOME:
        if care_request.address is None:
            raise RequestNeedsAddress()
        _require_in_reach(practitioner, *care_request.point())


# --- changing a booking ------------------------------------------------------------------------


def _changeable(
    session: Session, actor: User, booking: Booking, now: datetime, *, admin: bool
) -> None:
    """Lock the booking (`visible_booking` to the actor) for the change; admins too when
    `admin`. 409 once it is over or, for the parties, once the visit has started (it is then
    completed or a no-show)."""
    if actor.role is Role.ADMIN and not admin:
        raise NotFound("No such booking.")
    session.refresh(booking, with_for_update=True)
    if not booking.holds_time:
        raise BookingNotActive()
    if booking.starts_at <= now and actor.role is not Role.ADMIN:
        raise Conflict("The visit has already started.", code="visit_started")


def cancel_booking(
    session: Session,
    actor: User,
    booking_id: uuid.UUID,
    reason: str | None,
    *,
    now: datetime,
    policy: BookingPolicy,
) -> Booking:
    """Free the time at once; less than the policy's notice before the start is a late cancel."""
    booking = visible_booking(session, actor, booking_id)
    _changeable(session, actor, booking, now, admin=True)
    booking.cancellation_reason = reason
    late = booking.starts_at - now < policy.late_cancellation
    _cancel(session, booking, _practitioner_of(session, booking), actor.id, now, policy, late=late)
    return booking


def _cancel(
    session: Session,
    booking: Booking,
    practitioner: Practitioner,
    actor_id: uuid.UUID | None,
    now: datetime,
    policy: BookingPolicy,
    *,
    late: bool = False,
    code: str | None = None,
) -> None:
    """Free a locked, held booking's time: its request reopens, its reminders are dropped and
    both parties (and the patient's carers) are told."""
    booking.status = BookingStatus.CANCELLED
    booking.cancelled_at = now
    booking.cancelled_by_id = actor_id
    booking.cancellation_code = code
    booking.late_cancellation = late
    booking.sequence += 1
    session.flush()
    _reopen_request(session, booking, now)
    _rewrite_reminders(session, booking, now, policy, "The booking was cancelled.")
    _tell(session, booking, "cancelled", practitioner)


def cancel_visits_past_listing(
    session: Session,
    practitioner: Practitioner,
    before: datetime | None,
    *,
    now: datetime,
    actor_id: uuid.UUID | None,
    policy: BookingPolicy = DEFAULT_POLICY,
) -> list[Booking]:
    """Design decision 7: when a change (a suspension, a credential decision) made the listing
    end sooner than `before` (when it ended until then, `listing_ends`; None: no end), the
    visits that have not started and run past the new end are cancelled. Run after the listing
    was refreshed, in the same transaction. A listing that did not end sooner leaves every visit
    alone (a practitioner delisted by their own profile change keeps the visits they booked)."""
    after = listing_ends(practitioner, now)
    if after is None or (before is not None and after >= before):
        return []
    return _cancel_visits_after(
        session, practitioner, after, now=now, actor_id=actor_id, policy=policy
    )


def cancel_visits_of_lapsed(
    session: Session, *, now: datetime, policy: BookingPolicy = DEFAULT_POLICY
) -> list[Booking]:
    """The daily sweep after the lapse check: practitioners delisted because their credential
    expired lose every visit still to come (the system cancels them)."""
    lapsed = session.scalars(
        select(Practitioner).where(
            Practitioner.status != ListingStatus.LISTED,
            Practitioner.status_reason == "credential_expired",
            select(Booking.id)
            .where(
                Booking.practitioner_id == Practitioner.id,
                Booking.status.in_(TIME_HOLDING),
                Booking.starts_at > now,
            )
            .exists(),
        )
    ).all()
    return [
        booking
        for practitioner in lapsed
        for booking in _cancel_visits_after(
            session, practitioner, now, now=now, actor_id=None, policy=policy
        )
    ]


def _cancel_visits_after(
    session: Session,
    practitioner: Practitioner,
    ends: datetime,
    *,
    now: datetime,
    actor_id: uuid.UUID | None,
    policy: BookingPolicy,
) -> list[Booking]:
    """Cancel the practitioner's held visits that have not started and run past `ends`
    (`practitioner_unavailable`, never counted as late), each on the record."""
    affected = session.scalars(
        select(Booking)
        .where(
            Booking.practitioner_id == practitioner.id,
            Booking.status.in_(TIME_HOLDING),
            Booking.starts_at > now,
            Booking.ends_at > ends,
        )
        .order_by(Booking.starts_at)
        .with_for_update()
    ).all()
    for booking in affected:
        _cancel(
            session, booking, practitioner, actor_id, now, policy, code=PRACTITIONER_UNAVAILABLE
        )
        record_audit(
            session,
            actor_id=actor_id,
            action="booking.cancelled",
            subject_type="booking",
            subject_id=booking.id,
            details={"code": PRACTITIONER_UNAVAILABLE, "practitioner_id": str(practitioner.id)},
        )
    return list(affected)


def _reopen_request(session: Session, booking: Booking, now: datetime) -> None:
    """A cancelled visit gives its request back: open again while its window lasts."""
    if booking.request_id is None:
        return
    session.execute(
        update(CareRequest)
        .where(CareRequest.id == booking.request_id, CareRequest.status == RequestStatus.BOOKED)
        .values(
            status=case((CareRequest.latest > now, RequestStatus.OPEN), else_=RequestStatus.EXPIRED)
        )
        .execution_options(synchronize_session=False)
    )


def reschedule_booking(
    session: Session,
    actor: User,
    booking_id: uuid.UUID,
    start: datetime,
    *,
    now: datetime,
    policy: BookingPolicy = DEFAULT_POLICY,
) -> Booking:
    """Move the visit in one UPDATE: there is never a moment when both or neither time is held.
    If the new time is taken, or would put a follow-up before the assessment it follows, 409
    and the old time stays."""
    booking = visible_booking(session, actor, booking_id)
    # The diaries before the booking: the order a listing's end locks them in.
    lock_diaries(session, booking.practitioner_id, booking.patient_id)
    _changeable(session, actor, booking, now, admin=False)
    practitioner = get_listed_practitioner(session, booking.practitioner_id, business_today(now))
    end = _require_free_slot(
        session, practitioner, start, booking.mode, now, booking.visit_type, ignoring=booking.id
    )
    _require_patient_free(session, booking.patient_id, start, end, ignoring=booking.id)
    with _refused_overlaps(), session.begin_nested():
        booking.starts_at, booking.ends_at = start, end
        booking.rescheduled_by_id = actor.id
        booking.sequence += 1
        session.flush()
        if follow_ups_before_assessment(session, booking.patient_id, booking.practitioner_id):
            raise AssessmentRequired()
    _rewrite_reminders(session, booking, now, policy, "The visit moved to another time.")
    _tell(session, booking, "rescheduled", practitioner)
    return booking


def _require_outcome_due(
    booking: Booking, outcome: BookingStatus, now: datetime, policy: BookingPolicy
) -> None:
    """A visit is completed once its time is over; a patient is a no-show once the grace
    period after the start has passed without them."""
    if outcome is BookingStatus.NO_SHOW:
        due = booking.starts_at + policy.no_show_grace
        if now < due:
            raise OutcomeTooEarly(
                "A no-show can be recorded from the end of the grace period after the start.",
                details={"from": due.isoformat()},
            )
    elif now < booking.ends_at:
        raise OutcomeTooEarly(
            "A visit can be marked complete once its time is over.",
            details={"from": booking.ends_at.isoformat()},
        )


def record_outcome(
    session: Session,
    actor: User,
    booking_id: uuid.UUID,
    outcome: BookingStatus,
    *,
    now: datetime,
    policy: BookingPolicy = DEFAULT_POLICY,
) -> Booking:
    """The practitioner marks a visit completed once it is over, or the patient a no-show once
    the grace period after its start has passed."""
    booking = visible_booking(session, actor, booking_id)
    profile = find_profile(session, actor)
    if profile is None or booking.practitioner_id != profile.id:
        raise NotFound("No such booking.")
    session.refresh(booking, with_for_update=True)
    if booking.status is not BookingStatus.CONFIRMED:
        raise BookingNotActive()
    _require_outcome_due(booking, outcome, now, policy)
    booking.status = outcome
    session.flush()
    _rewrite_reminders(session, booking, now, policy, "The visit is over.")
    return booking


def _practitioner_of(session: Session, booking: Booking) -> Practitioner:
    practitioner = session.get(Practitioner, booking.practitioner_id)
    assert practitioner is not None  # the foreign key guarantees it
    return practitioner


def booking_view(
    booking: Booking, viewer: User, policy: BookingPolicy, *, patient_side: bool, patient: User
) -> dict[str, Any]:
    """The booking as this viewer may see it (`patient_side`: the patient or their carer); the
    patient's name and phone go where the address goes."""
    place = shows_address_to(booking, viewer, patient_side=patient_side)
    return {
        "patient_name": patient.full_name if place else None,
        "patient_phone": patient.phone if place else None,
        "id": booking.id,
        "practitioner_id": booking.practitioner_id,
        "patient_id": booking.patient_id,
        "request_id": booking.request_id,
        "start": booking.starts_at,
        "end": booking.ends_at,
        "mode": booking.mode,
        "visit_type": booking.visit_type,
        "status": booking.status,
        "late_cancellation": booking.late_cancellation,
        "cancellation_code": booking.cancellation_code,
        "video_url": video_url(booking, policy),
        "address": booking.address if place else None,
        "postcode": booking.postcode if place else None,
        "booked_by_id": booking.booked_by_id,
        "rescheduled_by_id": booking.rescheduled_by_id,
        "cancelled_by_id": booking.cancelled_by_id,
    }
