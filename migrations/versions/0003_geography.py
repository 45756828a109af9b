"""Postcode and outcode centroids for geocoding.

Revision ID: 0003_geography
Revises: 0002_practitioners
Create Date: 2026-11-23 16:55:12.589865
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003_geography'
down_revision: str | None = '0002_practitioners'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('postcode_centroids',
    sa.Column('code', sa.String(length=8), nullable=False),
    sa.Column('latitude', sa.Double(), nullable=False),
    sa.Column('longitude', sa.Double(), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_postcode_centroids'))
    )


def downgrade() -> None:
    op.drop_table('postcode_centroids')
