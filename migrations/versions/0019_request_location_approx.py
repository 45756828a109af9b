"""A care request says when its point is only approximate: the online geocoder could not be
reached, and the postcode's district centre stood in for it.

Revision ID: 0019_request_location_approx
Revises: 0018_booking_cancellation_code
Create Date: 2026-12-04 16:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_request_location_approx"
down_revision: str | None = "0018_booking_cancellation_code"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "care_requests",
        sa.Column(
            "location_approximate", sa.Boolean(), nullable=False, server_default=sa.false()
        ),
    )


def downgrade() -> None:
    with op.batch_alter_table("care_requests") as batch_op:
        batch_op.drop_column("location_approximate")
