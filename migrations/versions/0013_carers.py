"""Carers: invitations and grants to act for a patient; who made, moved and withdrew things;
an outbox message may go to an address of its own (an invitation).

Revision ID: 0013_carers
Revises: 0012_courses
Create Date: 2026-12-03 07:10:00

Who made earlier rows is filled in where it is certain: a request was made by its patient; an
instant booking (no request) by its patient, a course session by whoever booked the course.
A booking from a request may have been a claim, so it stays unknown (NULL).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_carers"
down_revision: str | None = "0012_courses"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("status IN ('invited', 'active')")


def upgrade() -> None:
    op.create_table(
        "carer_grants",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("carer_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.Enum("invited", "active", "revoked", name="carer_status",
                                    native_enum=False, create_constraint=True, length=20),
                  nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.Column("invited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["carer_id"], ["users.id"],
                                name=op.f("fk_carer_grants_carer_id_users"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["patient_id"], ["users.id"],
                                name=op.f("fk_carer_grants_patient_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carer_grants")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_carer_grants_code_hash")),
    )  # fmt: skip
    op.create_index("ix_carer_grants_carer_status", "carer_grants", ["carer_id", "status"])
    op.create_index(op.f("ix_carer_grants_patient_id"), "carer_grants", ["patient_id"])
    op.create_index("uq_carer_grants_live_email", "carer_grants", ["patient_id", "email"],
                    unique=True, sqlite_where=LIVE, postgresql_where=LIVE)  # fmt: skip

    # Plain ADD COLUMN: a batch rebuild of bookings on SQLite would drop its overlap triggers.
    op.add_column("bookings", sa.Column("booked_by_id", sa.Uuid(), nullable=True))
    op.add_column("bookings", sa.Column("rescheduled_by_id", sa.Uuid(), nullable=True))
    op.add_column("care_requests", sa.Column("created_by_id", sa.Uuid(), nullable=True))
    op.add_column("care_requests", sa.Column("withdrawn_by_id", sa.Uuid(), nullable=True))
    op.add_column("notifications", sa.Column("address", sa.String(length=254), nullable=True))

    op.execute("UPDATE care_requests SET created_by_id = patient_id")
    op.execute("""
        UPDATE bookings SET booked_by_id = (
            SELECT courses.created_by_id FROM course_sessions
            JOIN courses ON courses.id = course_sessions.course_id
            WHERE course_sessions.booking_id = bookings.id)
    """)  # fmt: skip
    op.execute("""
        UPDATE bookings SET booked_by_id = patient_id
        WHERE booked_by_id IS NULL AND request_id IS NULL
    """)  # fmt: skip


def downgrade() -> None:
    op.drop_column("notifications", "address")
    op.drop_column("care_requests", "withdrawn_by_id")
    op.drop_column("care_requests", "created_by_id")
    op.drop_column("bookings", "rescheduled_by_id")
    op.drop_column("bookings", "booked_by_id")
    op.drop_index("uq_carer_grants_live_email", table_name="carer_grants")
    op.drop_index(op.f("ix_carer_grants_patient_id"), table_name="carer_grants")
    op.drop_index("ix_carer_grants_carer_status", table_name="carer_grants")
    op.drop_table("carer_grants")
