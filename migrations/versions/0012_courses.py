"""Courses: weekly follow-ups booked together; their sessions in a table of their own.

Revision ID: 0012_courses
Revises: 0011_visit_types
Create Date: 2026-11-24 05:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_courses"
down_revision: str | None = "0011_visit_types"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "courses",
        sa.Column("practitioner_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("created_by_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["users.id"],
                                name=op.f("fk_courses_patient_id_users"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["practitioner_id"], ["practitioners.id"],
                                name=op.f("fk_courses_practitioner_id_practitioners"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_courses")),
    )  # fmt: skip
    op.create_index(op.f("ix_courses_patient_id"), "courses", ["patient_id"])
    op.create_index(op.f("ix_courses_practitioner_id"), "courses", ["practitioner_id"])
    op.create_table(
        "course_sessions",
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("booking_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"],
                                name=op.f("fk_course_sessions_booking_id_bookings"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"],
                                name=op.f("fk_course_sessions_course_id_courses"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("course_id", "booking_id", name=op.f("pk_course_sessions")),
        sa.UniqueConstraint("booking_id", name=op.f("uq_course_sessions_booking_id")),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("course_sessions")
    op.drop_index(op.f("ix_courses_practitioner_id"), table_name="courses")
    op.drop_index(op.f("ix_courses_patient_id"), table_name="courses")
    op.drop_table("courses")
