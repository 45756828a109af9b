"""Verified reviews: one per completed visit, with a reply and an admin's hiding.

Revision ID: 0010_reviews
Revises: 0009_account_erasure
Create Date: 2026-11-24 04:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_reviews"
down_revision: str | None = "0009_account_erasure"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("booking_id", sa.Uuid(), nullable=False),
        sa.Column("practitioner_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("replied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("hidden_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("hidden_reason", sa.Text(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name=op.f("ck_reviews_rating_range")),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"],
                                name=op.f("fk_reviews_author_id_users"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"],
                                name=op.f("fk_reviews_booking_id_bookings"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["practitioner_id"], ["practitioners.id"],
                                name=op.f("fk_reviews_practitioner_id_practitioners"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
        sa.UniqueConstraint("booking_id", name=op.f("uq_reviews_booking_id")),
    )  # fmt: skip
    op.create_index("ix_reviews_practitioner_created", "reviews",
                    ["practitioner_id", "created_at"])  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_reviews_practitioner_created", table_name="reviews")
    op.drop_table("reviews")
