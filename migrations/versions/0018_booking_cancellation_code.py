"""A booking the platform cancelled says why, as a code: `practitioner_unavailable` when the
practitioner's listing ended before the visit (a suspension, a lapse, a shorter renewal).

Revision ID: 0018_booking_cancellation_code
Revises: 0017_care_request_address
Create Date: 2026-12-04 16:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_booking_cancellation_code"
down_revision: str | None = "0017_care_request_address"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("bookings", sa.Column("cancellation_code", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bookings") as batch_op:
        batch_op.drop_column("cancellation_code")
