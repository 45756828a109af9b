"""Bookings, with the database refusing overlapping held time per practitioner.

Revision ID: 0005_bookings
Revises: 0004_care_requests
Create Date: 2026-11-23 17:11:11.757444
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

HOLDS_TIME = "status IN ('pending', 'confirmed')"
POSTGRES_NO_OVERLAP = f"""
ALTER TABLE bookings ADD CONSTRAINT ex_bookings_no_overlap
    EXCLUDE USING gist (practitioner_id WITH =, tstzrange(starts_at, ends_at) WITH &&)
    WHERE ({HOLDS_TIME})
"""
# SQLite has no exclusion constraints; triggers refuse the same rows. Booking transactions begin
# IMMEDIATE (one writer at a time), so the check inside the trigger cannot race.
SQLITE_OVERLAP_CHECK = f"""
    WHEN NEW.{HOLDS_TIME} AND EXISTS (
        SELECT 1 FROM bookings AS held
        WHERE held.practitioner_id = NEW.practitioner_id AND held.id != NEW.id
          AND held.{HOLDS_TIME}
          AND held.starts_at < NEW.ends_at AND NEW.starts_at < held.ends_at)
    BEGIN SELECT RAISE(ABORT, 'ex_bookings_no_overlap: overlapping booking'); END
"""


def refuse_overlaps() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(POSTGRES_NO_OVERLAP)
        return
    op.execute(f"CREATE TRIGGER bookings_no_overlap_insert BEFORE INSERT ON bookings {SQLITE_OVERLAP_CHECK}")
    op.execute(
        "CREATE TRIGGER bookings_no_overlap_update BEFORE UPDATE OF starts_at, ends_at, status,"
        f" practitioner_id ON bookings {SQLITE_OVERLAP_CHECK}"
    )


def allow_overlaps() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE bookings DROP CONSTRAINT ex_bookings_no_overlap")
        return
    op.execute("DROP TRIGGER bookings_no_overlap_insert")
    op.execute("DROP TRIGGER bookings_no_overlap_update")


revision: str = '0005_bookings'
down_revision: str | None = '0004_care_requests'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('bookings',
    sa.Column('practitioner_id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('request_id', sa.Uuid(), nullable=True),
    sa.Column('mode', sa.Enum('home', 'video', name='booking_mode', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.Enum('pending', 'confirmed', 'cancelled', 'completed', 'no_show', name='booking_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_bookings_ends_after_start')),
    sa.ForeignKeyConstraint(['patient_id'], ['users.id'], name=op.f('fk_bookings_patient_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['practitioner_id'], ['practitioners.id'], name=op.f('fk_bookings_practitioner_id_practitioners'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['request_id'], ['care_requests.id'], name=op.f('fk_bookings_request_id_care_requests'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bookings'))
    )
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.create_index('ix_bookings_patient_starts_at', ['patient_id', 'starts_at'], unique=False)
        batch_op.create_index('ix_bookings_practitioner_starts_at', ['practitioner_id', 'starts_at'], unique=False)
    refuse_overlaps()


def downgrade() -> None:
    allow_overlaps()
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.drop_index('ix_bookings_practitioner_starts_at')
        batch_op.drop_index('ix_bookings_patient_starts_at')

    op.drop_table('bookings')
