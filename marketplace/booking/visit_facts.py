"""What a booking message is about: the visit as it was when the event that caused it happened.

A message is written when it is sent, moments or (with the workers down) hours after its event,
and by then the visit may have moved or been cancelled again. So the event's facts are kept with
the outbox row when it is queued, and each message describes its own event. They hold no
personal data: whether the home address and the meeting link may be shown is kept, not the
address or the link, which are read from the booking when sending; erasing them there still
takes them out of every message not yet sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marketplace.booking.models import Booking, BookingStatus
from marketplace.practitioners.models import Mode

CONTEXT_KEY = "visit"


@dataclass(frozen=True)
class VisitFacts:
    starts_at: datetime
    ends_at: datetime
    mode: Mode
    status: BookingStatus
    sequence: int
    late_cancellation: bool
    shows_address: bool  # to this recipient, by the rules at the time
    shows_video_link: bool
    cancellation_code: str | None = None  # why the platform cancelled, if it did

    @classmethod
    def of(cls, booking: Booking, *, shows_address: bool) -> VisitFacts:
        """The booking as it is now; `shows_address`: the recipient may see the home address."""
        return cls(
            starts_at=booking.starts_at,
            ends_at=booking.ends_at,
            mode=booking.mode,
            status=booking.status,
            sequence=booking.sequence,
            late_cancellation=booking.late_cancellation,
            shows_address=shows_address,
            shows_video_link=booking.mode is Mode.VIDEO and booking.holds_time,
            cancellation_code=booking.cancellation_code,
        )

    def to_context(self) -> dict[str, Any]:
        """The facts as the outbox row's JSON context keeps them."""
        return {
            CONTEXT_KEY: {
                "starts_at": self.starts_at.isoformat(),
                "ends_at": self.ends_at.isoformat(),
                "mode": self.mode.value,
                "status": self.status.value,
                "sequence": self.sequence,
                "late_cancellation": self.late_cancellation,
                "shows_address": self.shows_address,
                "shows_video_link": self.shows_video_link,
                "cancellation_code": self.cancellation_code,
            }
        }

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> VisitFacts | None:
        """The facts kept in a row's context; None for a row queued before they were kept."""
        kept = context.get(CONTEXT_KEY)
        if kept is None:
            return None
        return cls(
            starts_at=datetime.fromisoformat(kept["starts_at"]),
            ends_at=datetime.fromisoformat(kept["ends_at"]),
            mode=Mode(kept["mode"]),
            status=BookingStatus(kept["status"]),
            sequence=kept["sequence"],
            late_cancellation=kept["late_cancellation"],
            shows_address=kept["shows_address"],
            shows_video_link=kept["shows_video_link"],
            cancellation_code=kept.get("cancellation_code"),
        )
