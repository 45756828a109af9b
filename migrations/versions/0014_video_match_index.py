"""A covering index for video matching (PostgreSQL): every video entry of a specialty, with all
that ranking reads, so a video request ranks its candidates from the index alone instead of
visiting thousands of table pages (a video request has no reach box to narrow it).

Revision ID: 0014_video_match_index
Revises: 0013_carers
Create Date: 2026-12-03 09:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014_video_match_index"
down_revision: str | None = "0013_carers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POSTGRES_VIDEO_INDEX = """
CREATE INDEX ix_match_entries_video ON match_entries (specialty, practitioner_id)
    INCLUDE (profession, listed_until, monday_closes, tuesday_closes, wednesday_closes,
             thursday_closes, friday_closes, saturday_closes, sunday_closes, dated_from,
             dated_until, latitude, longitude, travel_radius_km)
    WHERE mode = 'video'
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_VIDEO_INDEX)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_match_entries_video")
