"""Due reminders become outbox messages (design decision 3).

The dispatcher takes pending reminders whose time has come, oldest first, locked with
`SKIP LOCKED` on PostgreSQL. One whose visit has started (its time passed while the workers were
down), or that no longer holds time, is dropped with the reason recorded; the rest are queued as
messages to both parties (and the patient's carers), which must go out before the visit starts or
not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from marketplace.accounts.acting_for import carers_of
from marketplace.accounts.models import User
from marketplace.booking.bookings import shows_address_to
from marketplace.booking.models import Booking, Reminder, ReminderKind, ReminderStatus
from marketplace.booking.visit_facts import VisitFacts
from marketplace.notifications.models import Channel
from marketplace.notifications.service import (
    OutboxEntry,
    Recipient,
    booking_recipients,
    queue_notifications,
)
from marketplace.practitioners.models import Practitioner

VISIT_STARTED = "The visit had started before the reminder could be sent."
NOT_HELD = "The booking no longer holds the time."


@dataclass
class ReminderReport:
    queued: int = 0
    dropped: int = 0

    @property
    def handled(self) -> int:
        return self.queued + self.dropped


def queue_due_reminders(
    session: Session, now: datetime, *, limit: int, sms: bool
) -> ReminderReport:
    """Queue (or drop) up to `limit` due reminders; `sms` adds a text message to the late one
    for recipients with a phone number."""
    due = session.execute(
        select(Reminder, Booking, Practitioner.user_id)
        .join(Booking, Reminder.booking_id == Booking.id)
        .join(Practitioner, Booking.practitioner_id == Practitioner.id)
        .where(Reminder.status == ReminderStatus.PENDING, Reminder.send_at <= now)
        .order_by(Reminder.send_at)
        .limit(limit)
        .with_for_update(of=Reminder, skip_locked=True)
    ).all()
    carers = carers_of(session, {booking.patient_id for _, booking, _ in due})
    phones = _phones(session, due, carers) if sms else {}
    report = ReminderReport()
    entries: list[OutboxEntry] = []
    for reminder, booking, practitioner_user_id in due:
        reason = _reason_to_drop(reminder, booking, now)
        if reason is not None:
            reminder.status, reminder.dropped_reason = ReminderStatus.DROPPED, reason
            report.dropped += 1
            continue
        carer_ids = carers.get(booking.patient_id, [])
        for to in booking_recipients(booking.patient_id, practitioner_user_id, carer_ids):
            channels = [Channel.EMAIL]
            if reminder.kind is ReminderKind.LATE and phones.get(to.user_id):
                channels.append(Channel.SMS)
            entries += [_message(reminder, booking, to, channel) for channel in channels]
        reminder.status, reminder.queued_at = ReminderStatus.QUEUED, now
        report.queued += 1
    session.flush()
    queue_notifications(session, entries)
    return report


def _reason_to_drop(reminder: Reminder, booking: Booking, now: datetime) -> str | None:
    if not booking.holds_time or booking.starts_at != reminder.visit_starts_at:
        return NOT_HELD
    if booking.starts_at <= now:
        return VISIT_STARTED
    return None


def _message(reminder: Reminder, booking: Booking, to: Recipient, channel: Channel) -> OutboxEntry:
    shows_address = shows_address_to(booking, None, patient_side=to.patient_side)
    return OutboxEntry(
        user_id=to.user_id,
        template=reminder.kind.template,
        subject_type="booking",
        subject_id=booking.id,
        dedupe_key=f"reminder:{reminder.id}:{to.key}:{channel.value}",
        context={
            "role": to.role,
            "visit_starts_at": booking.starts_at.isoformat(),
            **VisitFacts.of(booking, shows_address=shows_address).to_context(),
        },
        channel=channel,
        send_before=booking.starts_at,
    )


def _phones(
    session: Session,
    due: Sequence[Row[Reminder, Booking, uuid.UUID]],
    carers: dict[uuid.UUID, list[uuid.UUID]],
) -> dict[uuid.UUID, str]:
    user_ids = {booking.patient_id for _, booking, _ in due} | {user for _, _, user in due}
    user_ids |= {carer for ids in carers.values() for carer in ids}
    rows = session.execute(select(User.id, User.phone).where(User.id.in_(user_ids)))
    return {user_id: phone for user_id, phone in rows if phone}
