"""A home care request carries the address to visit, so the practitioner who claims it knows
where to go (private like a booking's address: the patient's side, admins, and the practitioner
of a visit booked from it while that visit is confirmed). Requests made before have none: they
stay out of the practitioners' feed and cannot be claimed; their patients book from matches.

Revision ID: 0017_care_request_address
Revises: 0016_match_assessment_starts
Create Date: 2026-12-04 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_care_request_address"
down_revision: str | None = "0016_match_assessment_starts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("care_requests", sa.Column("address", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("care_requests") as batch_op:
        batch_op.drop_column("address")
