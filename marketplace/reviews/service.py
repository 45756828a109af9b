"""Reviews: only the patient of a completed visit (or their carer) reviews it, once; the
practitioner replies once; admins hide a review with a reason (audited with ids only). Hidden
reviews are gone from everything public, the average and count included."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketplace.accounts.acting_for import acts_for
from marketplace.accounts.models import Role, User
from marketplace.audit.service import record_audit
from marketplace.booking.models import Booking, BookingStatus
from marketplace.errors import Conflict, Forbidden, NotFound
from marketplace.pagination import Page, paginate
from marketplace.practitioners.models import Practitioner
from marketplace.reviews.models import Review

RECENT = 3


class AlreadyReviewed(Conflict):
    code = "already_reviewed"
    message = "This visit has been reviewed already."


class NotReviewable(Conflict):
    code = "visit_not_completed"
    message = "Only a completed visit can be reviewed."


class AlreadyReplied(Conflict):
    code = "already_replied"
    message = "You have replied to this review already."


@dataclass(frozen=True)
class RatingSummary:
    average: float | None
    count: int

    @classmethod
    def of(cls, average: Any, count: int | None) -> RatingSummary:
        """From the database's average (a Decimal on PostgreSQL; None without reviews) and
        count."""
        if average is None:
            return NO_RATING
        return cls(round(float(average), 2), int(count or 0))

    @property
    def reason(self) -> str | None:
        """'4.8 from 23 reviews', for patients choosing."""
        if not self.count or self.average is None:
            return None
        return f"{self.average:.1f} from {self.count} review{'s' if self.count != 1 else ''}"


def review_visit(
    session: Session,
    author: User,
    booking_id: uuid.UUID,
    rating: int,
    comment: str | None,
    now: datetime,
) -> Review:
    booking = session.get(Booking, booking_id)
    if booking is None or not acts_for(session, author, booking.patient_id):
        raise NotFound("No such booking.")
    if booking.status is not BookingStatus.COMPLETED:
        raise NotReviewable()
    if session.scalar(select(Review.id).where(Review.booking_id == booking.id)) is not None:
        raise AlreadyReviewed()
    review = Review(
        booking_id=booking.id,
        practitioner_id=booking.practitioner_id,
        author_id=author.id,
        rating=rating,
        comment=comment,
        created_at=now,
    )
    try:
        with session.begin_nested():  # two at once: the unique booking_id lets one in
            session.add(review)
    except IntegrityError:
        raise AlreadyReviewed() from None
    return review


NO_RATING = RatingSummary(None, 0)


def reply_to_review(
    session: Session, practitioner_user: User, review_id: uuid.UUID, reply: str, now: datetime
) -> Review:
    review = session.get(Review, review_id, with_for_update=True)
    practitioner = session.get(Practitioner, review.practitioner_id) if review else None
    if review is None or practitioner is None or practitioner.user_id != practitioner_user.id:
        raise NotFound("No such review.")
    if review.reply is not None:
        raise AlreadyReplied()
    review.reply, review.replied_at = reply, now
    session.flush()
    return review


def hide_review(
    session: Session, admin: User, review_id: uuid.UUID, reason: str, now: datetime
) -> Review:
    if admin.role is not Role.ADMIN:
        raise Forbidden()
    review = session.get(Review, review_id, with_for_update=True)
    if review is None:
        raise NotFound("No such review.")
    if review.hidden_at is not None:
        raise Conflict("This review is hidden already.", code="already_hidden")
    review.hidden_at, review.hidden_reason = now, reason
    record_audit(
        session,
        actor_id=admin.id,
        action="review.hidden",
        subject_type="review",
        subject_id=review.id,
    )
    session.flush()
    return review


def _not_hidden() -> ColumnElement[bool]:
    return Review.hidden_at.is_(None)


def rating_summary(session: Session, practitioner_id: uuid.UUID) -> RatingSummary:
    return rating_summaries(session, [practitioner_id]).get(practitioner_id, NO_RATING)


def visible_ratings(
    practitioner_ids: Iterable[uuid.UUID] | BindParameter[list[uuid.UUID]],
) -> Select[uuid.UUID, Any, int]:
    """SQL: the `average` and `count` of each practitioner's visible reviews (those without
    reviews are left out)."""
    return (
        select(
            Review.practitioner_id,
            func.avg(Review.rating).label("average"),
            func.count(Review.id).label("count"),
        )
        .where(Review.practitioner_id.in_(practitioner_ids), _not_hidden())
        .group_by(Review.practitioner_id)
    )


def rating_summaries(
    session: Session, practitioner_ids: list[uuid.UUID]
) -> dict[uuid.UUID, RatingSummary]:
    """Ratings of several practitioners in one query (those without reviews are left out)."""
    rows = session.execute(visible_ratings(practitioner_ids))
    return {pid: RatingSummary.of(average, count) for pid, average, count in rows}


def visible_reviews(
    session: Session, practitioner_id: uuid.UUID, limit: int, cursor: str | None
) -> Page[Review]:
    query = select(Review).where(Review.practitioner_id == practitioner_id, _not_hidden())
    return paginate(session, query, Review.created_at, Review.id, limit, cursor, descending=True)
