"""Message texts, written when a message is sent (Jinja templates under templates/email/ and
templates/sms/). A booking message describes the visit as its event left it (the facts kept with
the outbox row), in the recipient's time zone; names, the home address and the meeting link are
read from the database when sending. None carries health notes. Emails have a plain-text and an
HTML part."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from flask import current_app, render_template
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.accounts.acting_for import carers_of
from marketplace.accounts.models import User
from marketplace.booking.bookings import (
    PRACTITIONER_UNAVAILABLE,
    BookingPolicy,
    meeting_link,
    shows_address_to,
)
from marketplace.booking.calendar import (
    Party,
    Visit,
    invitation_calendar,
    itip_method,
    platform_organizer,
    stand_in,
    visit_summary,
)
from marketplace.booking.models import REMINDER_TEMPLATES, Booking
from marketplace.booking.visit_facts import VisitFacts
from marketplace.clock import BUSINESS_ZONE
from marketplace.db import UUIDPrimaryKey, utcnow
from marketplace.links import public_url, visit_page
from marketplace.notifications.channels import Attachment, OutgoingMessage
from marketplace.notifications.models import Channel, Notification
from marketplace.practitioners.models import Mode, Practitioner

SUBJECTS = {
    "credential_approved": "Your credential is verified",
    "credential_rejected": "Your credential could not be verified",
    "credential_expiring": "Your credential expires soon",
    "practitioner_delisted": "Your profile is no longer listed",
    "practitioner_suspended": "Your profile has been suspended",
    "practitioner_reinstated": "Your profile has been reinstated",
    "booking_confirmed": "Your visit is booked",
    "booking_cancelled": "Your visit is cancelled",
    "booking_rescheduled": "Your visit has moved",
    "request_claimed": "Your request is booked",
    "reminder_early": "Reminder: your visit is coming up",
    "reminder_late": "Reminder: your visit is soon",
    "carer_invitation": "You are invited to help with someone's visits",
}
WITH_CALENDAR = {"booking_confirmed", "booking_cancelled", "booking_rescheduled", "request_claimed"}
LINK = re.compile(r"https?://[^\s<]+")


@dataclass(frozen=True)
class Sources:
    """What a batch of messages is written from, loaded together: the recipients, the bookings
    the messages are about, their practitioners, the other parties and the patients' carers."""

    users: dict[uuid.UUID, User]
    bookings: dict[uuid.UUID, Booking]
    practitioners: dict[uuid.UUID, Practitioner]
    carers: dict[uuid.UUID, list[uuid.UUID]]

    @classmethod
    def load(cls, session: Session, notifications: Sequence[Notification]) -> Sources:
        booking_ids = {n.subject_id for n in notifications if n.subject_type == "booking"}
        bookings = _by_id(session, Booking, booking_ids)
        practitioners = _by_id(
            session, Practitioner, {b.practitioner_id for b in bookings.values()}
        )
        user_ids = (
            {n.user_id for n in notifications}
            | {b.patient_id for b in bookings.values()}
            | {p.user_id for p in practitioners.values()}
        )
        carers = carers_of(session, {b.patient_id for b in bookings.values()})
        return cls(_by_id(session, User, user_ids), bookings, practitioners, carers)


Row = TypeVar("Row", bound=UUIDPrimaryKey)


def _by_id(session: Session, entity: type[Row], ids: set[uuid.UUID]) -> dict[uuid.UUID, Row]:
    if not ids:
        return {}
    return {row.id: row for row in session.scalars(select(entity).where(entity.id.in_(ids)))}


def compose(notification: Notification, sources: Sources) -> OutgoingMessage | None:
    """The message as it goes out now; None if what it was about no longer calls for it (a
    reminder of a visit that was cancelled or moved)."""
    account = sources.users[notification.user_id]
    # An invitation goes to an address of its own, from the patient's account.
    recipient = None if notification.address else account
    context: dict[str, Any] = {"recipient": recipient, "account": account, **notification.context}
    attachments: tuple[Attachment, ...] = ()
    if "expires_at" in notification.context:  # an invitation's
        expires_at = datetime.fromisoformat(notification.context["expires_at"])
        context["expires"] = local_time(expires_at, BUSINESS_ZONE)
        context["accept_url"] = public_url("/carers/accept", code=notification.context["code"])
    if notification.subject_type == "booking":
        booking = sources.bookings.get(notification.subject_id)
        if booking is None or not _still_relevant(notification, booking, sources):
            return None
        role = notification.context["role"]
        facts = VisitFacts.from_context(notification.context) or _facts_now(booking, role)
        details = _booking_details(sources, booking, facts, role)
        context |= details
        if notification.template in WITH_CALENDAR and notification.channel is Channel.EMAIL:
            attachments = (_calendar_attachment(booking, facts, details, account),)
    template = notification.template
    if notification.channel is Channel.SMS:
        text = render_template(f"sms/{template}.txt", **context).strip()
        return OutgoingMessage(
            str(notification.id),
            notification.dedupe_key,
            account.email,
            account.phone,
            SUBJECTS[template],
            text,
        )
    text = render_template(f"email/{template}.txt", **context)
    return OutgoingMessage(
        notification_id=str(notification.id),
        dedupe_key=notification.dedupe_key,
        email=notification.address or account.email,
        phone=None if notification.address else account.phone,
        subject=SUBJECTS[template],
        text=text,
        html=render_template(
            "email/layout.html", subject=SUBJECTS[template], paragraphs=_paragraphs(text)
        ),
        attachments=attachments,
    )


def _still_relevant(notification: Notification, booking: Booking, sources: Sources) -> bool:
    """A reminder only for the visit as it still is; a carer's message only while they are."""
    carers = sources.carers.get(booking.patient_id, [])
    if notification.context.get("role") == "carer" and notification.user_id not in carers:
        return False
    if notification.template not in REMINDER_TEMPLATES:
        return True
    visit = notification.context.get("visit_starts_at")
    return booking.holds_time and visit == booking.starts_at.isoformat()


def _facts_now(booking: Booking, role: str) -> VisitFacts:
    """For a row queued before events' facts were kept: the booking as it is now."""
    patient_side = role != "practitioner"
    shows = shows_address_to(booking, None, patient_side=patient_side)
    return VisitFacts.of(booking, shows_address=shows)


def _booking_details(
    sources: Sources, booking: Booking, facts: VisitFacts, role: str
) -> dict[str, Any]:
    """What a booking message says, for the practitioner, the patient or a carer of theirs."""
    practitioner = sources.practitioners[booking.practitioner_id]
    patient_side = role != "practitioner"
    if patient_side:
        zone = BUSINESS_ZONE
        other_party = sources.users[practitioner.user_id].full_name
    else:
        zone = ZoneInfo(practitioner.timezone)
        other_party = sources.users[booking.patient_id].full_name
    # The patient's side knows their own address: the text gives it to the practitioner only.
    tells_address = not patient_side
    return {
        "role": role,
        "patient_side": patient_side,
        "patient_name": sources.users[booking.patient_id].full_name if role == "carer" else None,
        "mode": facts.mode.value,
        "when": local_time(facts.starts_at, zone),
        "how_soon": how_soon(facts.starts_at - utcnow()),
        "other_party": other_party,
        "booking_id": str(booking.id),
        "visit_url": visit_page(booking.id),
        "late": facts.late_cancellation,
        "practitioner_unavailable": facts.cancellation_code == PRACTITIONER_UNAVAILABLE,
        "address": _address(booking, facts) if tells_address else None,
        "video_url": _meeting_link(booking, facts),
    }


def _address(booking: Booking, facts: VisitFacts) -> str | None:
    """The home address, where the event let the recipient see it (none once erased)."""
    if facts.mode is not Mode.HOME or not facts.shows_address:
        return None
    return ", ".join(part for part in (booking.address, booking.postcode) if part) or None


def _meeting_link(booking: Booking, facts: VisitFacts) -> str | None:
    """The meeting link, where the event gave it (none once erased). `video_url` would judge by
    the booking as it is now: a message about an earlier revision keeps that revision's link."""
    if not facts.shows_video_link or booking.video_room is None:
        return None
    return meeting_link(booking.video_room, BookingPolicy.from_config(current_app.config))


def local_time(moment: datetime, zone: ZoneInfo) -> str:
    """'Tuesday 24 November 2026 at 10:00 (GMT)': the time where the reader is."""
    local = moment.astimezone(zone)
    return f"{local:%A} {local.day} {local:%B %Y at %H:%M} ({local:%Z})"


def how_soon(ahead: timedelta) -> str:
    hours = round(ahead.total_seconds() / 3600)
    if hours >= 36:
        return f"in {round(hours / 24)} days"
    if hours >= 20:
        return "tomorrow" if hours < 30 else f"in {hours} hours"
    if hours >= 2:
        return f"in {hours} hours"
    return "within the hour" if hours < 1 else "in about an hour"


def _calendar_attachment(
    booking: Booking, facts: VisitFacts, details: dict[str, Any], reader: User
) -> Attachment:
    visit = Visit(
        booking_id=booking.id,
        starts_at=facts.starts_at,
        ends_at=facts.ends_at,
        sequence=facts.sequence,
        status=facts.status,
        summary=visit_summary(facts.mode, details["other_party"]),
        location=_address(booking, facts),
        url=details["video_url"],
        page=details["visit_url"],
    )
    sender = current_app.config["MAIL_DEFAULT_SENDER"]
    attendees = [Party(reader.full_name, reader.email), stand_in(details["other_party"], sender)]
    data = invitation_calendar(visit, platform_organizer(sender), attendees, utcnow())
    method = itip_method(visit)
    return Attachment(
        f"booking-{booking.id}.ics",
        "text/calendar",
        data,
        (("method", method), ("charset", "utf-8")),
    )


def _paragraphs(text: str) -> list[Markup]:
    """The plain text as HTML paragraphs, links made clickable."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        escaped = str(escape(block))
        linked = LINK.sub(lambda found: f'<a href="{found[0]}">{found[0]}</a>', escaped)
        paragraphs.append(Markup(linked.replace("\n", "<br>\n")))  # noqa: S704 - escaped above
    return paragraphs
