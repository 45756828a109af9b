"""Match entries also hold the earliest an assessment can start each weekday
(`monday_first_start` ...: the start of the first weekly rule offering the mode that holds one),
so matching can read practitioners whose bounds tie in order of the earliest their first slot
can start, as equal scores go to the earliest slot, and stop once the rest start too late
instead of evaluating everyone who shares the bound.

The entries are emptied: `flask db upgrade` rebuilds them from every practitioner's profile when
the table is empty (as after 0006, 0015 and 0016), in place order. Until it has, matching finds
no one; a downgrade empties them too, to be rebuilt with `flask db reindex`. On PostgreSQL the
covering video index of 0014 is rebuilt to cover the new columns.

Revision ID: 0020_match_first_starts
Revises: 0019_request_location_approx
Create Date: 2026-12-04 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_match_first_starts"
down_revision: str | None = "0019_request_location_approx"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
LAST_STARTS = ", ".join(f"{day}_last_start" for day in WEEKDAYS)
FIRST_STARTS = ", ".join(f"{day}_first_start" for day in WEEKDAYS)


def video_index(weekdays: str) -> str:
    """0014's covering index, covering the given weekday columns."""
    return f"""
CREATE INDEX ix_match_entries_video ON match_entries (specialty, practitioner_id)
    INCLUDE (profession, listed_until, {weekdays}, dated_from, dated_until, latitude, longitude,
             travel_radius_km)
    WHERE mode = 'video'
"""


def upgrade() -> None:
    op.execute("DELETE FROM match_entries")
    for day in WEEKDAYS:
        op.add_column("match_entries", sa.Column(f"{day}_first_start", sa.Time(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_match_entries_video")
        op.execute(video_index(f"{LAST_STARTS}, {FIRST_STARTS}"))


def downgrade() -> None:
    op.execute("DELETE FROM match_entries")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_match_entries_video")
    with op.batch_alter_table("match_entries") as batch_op:
        for day in WEEKDAYS:
            batch_op.drop_column(f"{day}_first_start")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(video_index(LAST_STARTS))
