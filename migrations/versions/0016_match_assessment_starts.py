"""Match entries' weekday columns (`monday_last_start` ...) now hold the latest an assessment can
start, the visit a patient new to the practitioner books, instead of the shorter of an assessment
and a follow-up. With the shorter one, a window opening between the two last starts counted the
day for every practitioner who could fit only a follow-up, and matching evaluated page after page
of them (video p50 85-115 ms instead of 10 ms at 100,000 practitioners, at those times of day).
Matching gives practitioners who have assessed the patient an optimistic first day instead.

The entries are emptied: `flask db upgrade` rebuilds them from every practitioner's profile when
the table is empty (as after 0006 and 0015), in place order. Until it has, matching finds no one;
a downgrade empties them too, to be rebuilt with `flask db reindex`.

Revision ID: 0016_match_assessment_starts
Revises: 0015_match_last_starts
Create Date: 2026-12-03 16:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016_match_assessment_starts"
down_revision: str | None = "0015_match_last_starts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DELETE FROM match_entries")


def downgrade() -> None:
    op.execute("DELETE FROM match_entries")
