"""Care requests, and the location index that matching narrows candidates with.

Revision ID: 0004_care_requests
Revises: 0003_geography
Create Date: 2026-11-23 17:06:02.917136
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004_care_requests'
down_revision: str | None = '0003_geography'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('care_requests',
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('mode', sa.Enum('home', 'video', name='request_mode', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('specialty', sa.String(length=40), nullable=False),
    sa.Column('postcode', sa.String(length=8), nullable=True),
    sa.Column('outcode', sa.String(length=4), nullable=True),
    sa.Column('latitude', sa.Double(), nullable=True),
    sa.Column('longitude', sa.Double(), nullable=True),
    sa.Column('earliest', sa.DateTime(timezone=True), nullable=False),
    sa.Column('latest', sa.DateTime(timezone=True), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('status', sa.Enum('open', 'booked', 'expired', 'withdrawn', name='request_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("mode != 'home' OR (latitude IS NOT NULL AND longitude IS NOT NULL)", name=op.f('ck_care_requests_home_has_a_point')),
    sa.CheckConstraint('latest > earliest', name=op.f('ck_care_requests_window_forwards')),
    sa.ForeignKeyConstraint(['patient_id'], ['users.id'], name=op.f('fk_care_requests_patient_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_care_requests'))
    )
    with op.batch_alter_table('care_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_care_requests_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index('ix_care_requests_status_latest', ['status', 'latest'], unique=False)

    with op.batch_alter_table('practitioners', schema=None) as batch_op:
        batch_op.create_index('ix_practitioners_location', ['latitude', 'longitude'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('practitioners', schema=None) as batch_op:
        batch_op.drop_index('ix_practitioners_location')

    with op.batch_alter_table('care_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_care_requests_status_latest')
        batch_op.drop_index(batch_op.f('ix_care_requests_patient_id'))

    op.drop_table('care_requests')
