"""Match entries hold the latest a visit can start each weekday (`monday_last_start` ...) instead
of when the hours end (`monday_closes` ...), so matching no longer counts a practitioner as free
on a day whose hours end too soon after the request's window opens.

The columns are renamed and the entries emptied: `flask db upgrade` rebuilds them from every
practitioner's profile when the table is empty (as after 0006), in place order. Until it has,
matching finds no one; a downgrade empties them too, to be rebuilt with `flask db reindex`. On
PostgreSQL the covering index of 0014 follows the rename.

Revision ID: 0015_match_last_starts
Revises: 0014_video_match_index
Create Date: 2026-12-03 14:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015_match_last_starts"
down_revision: str | None = "0014_video_match_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def rename(old: str, new: str) -> None:
    op.execute("DELETE FROM match_entries")
    for day in WEEKDAYS:
        op.alter_column("match_entries", f"{day}_{old}", new_column_name=f"{day}_{new}")


def upgrade() -> None:
    rename("closes", "last_start")


def downgrade() -> None:
    rename("last_start", "closes")
