"""Visit types: a practitioner's assessment (length and price) beside their follow-up session;
each booking says which it is. Existing data: assessments take 75 minutes at the follow-up
price, and each patient's first held or completed visit with a practitioner is marked as the
assessment.

Plain ADD COLUMNs (no batch copy on SQLite, which would drop the bookings triggers).

Revision ID: 0011_visit_types
Revises: 0010_reviews
Create Date: 2026-11-24 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_visit_types"
down_revision: str | None = "0010_reviews"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

def visit_type() -> sa.Enum:
    # SQLite cannot add a CHECK to an existing table without a batch copy (which would drop the
    # bookings triggers): there the application's schema validation stands alone.
    return sa.Enum("assessment", "follow_up", name="visit_type", native_enum=False,
                   create_constraint=op.get_bind().dialect.name == "postgresql", length=20)  # fmt: skip


def upgrade() -> None:
    op.add_column("practitioners", sa.Column("assessment_minutes", sa.Integer(), nullable=False,
                                             server_default="75"))  # fmt: skip
    op.add_column("practitioners", sa.Column("assessment_price_pence", sa.Integer(),
                                             nullable=False, server_default="1"))  # fmt: skip
    op.execute("UPDATE practitioners SET assessment_price_pence = price_pence")
    op.add_column("bookings", sa.Column("visit_type", visit_type(), nullable=False,
                                        server_default="follow_up"))  # fmt: skip
    op.execute(
        """
        UPDATE bookings SET visit_type = 'assessment'
        WHERE id IN (
            SELECT b.id FROM bookings b
            WHERE b.status IN ('pending', 'confirmed', 'completed')
              AND NOT EXISTS (
                SELECT 1 FROM bookings e
                WHERE e.patient_id = b.patient_id AND e.practitioner_id = b.practitioner_id
                  AND e.status IN ('pending', 'confirmed', 'completed')
                  AND (e.starts_at < b.starts_at OR (e.starts_at = b.starts_at AND e.id < b.id))
              )
        )
        """
    )
    if op.get_bind().dialect.name == "postgresql":
        op.create_check_constraint(
            op.f("ck_practitioners_assessment_minutes_range"), "practitioners",
            "assessment_minutes BETWEEN 30 AND 180 AND assessment_minutes % 15 = 0",
        )  # fmt: skip
        op.create_check_constraint(op.f("ck_practitioners_assessment_price_positive"),
                                   "practitioners", "assessment_price_pence > 0")  # fmt: skip


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f("ck_practitioners_assessment_price_positive"), "practitioners")
        op.drop_constraint(op.f("ck_practitioners_assessment_minutes_range"), "practitioners")
    op.drop_column("practitioners", "assessment_price_pence")
    op.drop_column("practitioners", "assessment_minutes")
    op.drop_column("bookings", "visit_type")
