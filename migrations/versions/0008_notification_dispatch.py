"""Notification dispatch: due times, leases and a send-by time on outbox rows; reminders with
configurable leads (kinds `early` and `late`) that are queued into the outbox when due.

No reminder was ever delivered before this revision (there was no dispatcher), so the reminders
table is made afresh and filled from the bookings that still hold time, with the default leads
(24 h and 2 h).

Revision ID: 0008_notification_dispatch
Revises: 0007_booking_details
Create Date: 2026-11-23 09:30:00
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0008_notification_dispatch"
down_revision: str | None = "0007_booking_details"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_LEADS = {"early": timedelta(hours=24), "late": timedelta(hours=2)}


def create_reminders(kinds: tuple[str, ...], statuses: tuple[str, ...], stamp: str) -> None:
    op.create_table('reminders',
    sa.Column('booking_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.Enum(*kinds, name='reminder_kind', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('visit_starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('send_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.Enum(*statuses, name='reminder_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column(stamp, sa.DateTime(timezone=True), nullable=True),
    sa.Column('dropped_reason', sa.Text(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], name=op.f('fk_reminders_booking_id_bookings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reminders')),
    sa.UniqueConstraint('booking_id', 'kind', 'visit_starts_at', name=op.f('uq_reminders_booking_id'))
    )  # fmt: skip
    op.create_index("ix_reminders_status_send_at", "reminders", ["status", "send_at"])


def drop_reminders() -> None:
    op.drop_index("ix_reminders_status_send_at", table_name="reminders")
    op.drop_table("reminders")


def schedule_reminders_for_held_bookings() -> None:
    now = datetime.now(UTC)
    bookings = sa.table(
        "bookings",
        sa.column("id", sa.Uuid()),
        sa.column("starts_at", sa.DateTime(timezone=True)),
        sa.column("status", sa.String()),
    )
    reminders = sa.table(
        "reminders",
        *(sa.column(name, sa.Uuid()) for name in ("id", "booking_id")),
        *(sa.column(name, sa.String()) for name in ("kind", "status")),
        *(sa.column(name, sa.DateTime(timezone=True)) for name in ("visit_starts_at", "send_at")),
    )
    connection = op.get_bind()
    held = connection.execute(
        sa.select(bookings.c.id, bookings.c.starts_at).where(
            bookings.c.status.in_(["pending", "confirmed"]), bookings.c.starts_at > now
        )
    ).all()
    rows = [
        {
            "id": uuid.uuid4(),
            "booking_id": booking_id,
            "kind": kind,
            "status": "pending",
            "visit_starts_at": starts_at,
            "send_at": starts_at - lead,
        }
        for booking_id, starts_at in held
        for kind, lead in DEFAULT_LEADS.items()
        if starts_at.replace(tzinfo=starts_at.tzinfo or UTC) - lead > now
    ]
    if rows:
        op.bulk_insert(reminders, rows)


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dropped_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("send_before", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_index("ix_notifications_status_created_at")
    op.execute("UPDATE notifications SET due_at = created_at")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.alter_column("due_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.create_index("ix_notifications_status_due_at", ["status", "due_at"], unique=False)

    drop_reminders()
    create_reminders(("early", "late"), ("pending", "queued", "dropped"), "queued_at")
    schedule_reminders_for_held_bookings()


def downgrade() -> None:
    drop_reminders()
    create_reminders(("day_before", "hour_before"), ("pending", "sent", "dropped"), "sent_at")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_status_due_at")
        batch_op.create_index(
            "ix_notifications_status_created_at", ["status", "created_at"], unique=False
        )
        batch_op.drop_column("send_before")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("due_at")
        batch_op.drop_column("dropped_reason")
