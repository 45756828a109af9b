"""Practitioners, credentials, availability, the audit log and the notification outbox.

Revision ID: 0002_practitioners
Revises: 0001_accounts
Create Date: 2026-11-23 16:31:05.369928
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# The audit log is append-only: the database itself refuses to change or delete a row.
POSTGRES_AUDIT_GUARD = """
CREATE FUNCTION audit_log_is_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
"""
SQLITE_AUDIT_GUARD = [
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log"
    " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log"
    " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
]


def guard_audit_log() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_AUDIT_GUARD)
    else:
        for statement in SQLITE_AUDIT_GUARD:
            op.execute(statement)


def unguard_audit_log() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_no_update ON audit_log")
        op.execute("DROP FUNCTION audit_log_is_append_only()")
    else:
        op.execute("DROP TRIGGER audit_log_no_update")
        op.execute("DROP TRIGGER audit_log_no_delete")


revision: str = '0002_practitioners'
down_revision: str | None = '0001_accounts'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.Uuid(), nullable=True),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('subject_type', sa.String(length=40), nullable=False),
    sa.Column('subject_id', sa.Uuid(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)
        batch_op.create_index('ix_audit_log_subject', ['subject_type', 'subject_id', 'at'], unique=False)
    guard_audit_log()

    op.create_table('notifications',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('channel', sa.Enum('email', 'sms', name='notification_channel', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('template', sa.String(length=60), nullable=False),
    sa.Column('subject_type', sa.String(length=40), nullable=False),
    sa.Column('subject_id', sa.Uuid(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=False),
    sa.Column('context', sa.JSON(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'sending', 'sent', 'failed', 'dropped', name='notification_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notifications_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_notifications_dedupe_key'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_status_created_at', ['status', 'created_at'], unique=False)

    op.create_table('practitioners',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('profession', sa.Enum('physiotherapist', 'neuromuscular_therapist', name='profession', native_enum=False, create_constraint=True, length=30), nullable=False),
    sa.Column('bio', sa.Text(), nullable=False),
    sa.Column('offers_home', sa.Boolean(), nullable=False),
    sa.Column('offers_video', sa.Boolean(), nullable=False),
    sa.Column('base_postcode', sa.String(length=8), nullable=True),
    sa.Column('latitude', sa.Double(), nullable=True),
    sa.Column('longitude', sa.Double(), nullable=True),
    sa.Column('travel_radius_km', sa.Integer(), nullable=True),
    sa.Column('session_minutes', sa.Integer(), nullable=False),
    sa.Column('price_pence', sa.Integer(), nullable=False),
    sa.Column('languages', sa.JSON(), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('min_notice_hours', sa.Integer(), nullable=False),
    sa.Column('horizon_days', sa.Integer(), nullable=False),
    sa.Column('buffer_minutes', sa.Integer(), nullable=False),
    sa.Column('travel_buffer_minutes', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'listed', 'delisted', name='listing_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('status_reason', sa.String(length=40), nullable=True),
    sa.Column('listed_until', sa.Date(), nullable=True),
    sa.Column('first_listed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('suspended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('suspension_reason', sa.Text(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('offers_home OR offers_video', name=op.f('ck_practitioners_offers_a_mode')),
    sa.CheckConstraint('price_pence > 0', name=op.f('ck_practitioners_price_positive')),
    sa.CheckConstraint('session_minutes BETWEEN 30 AND 120 AND session_minutes % 15 = 0', name=op.f('ck_practitioners_session_minutes_range')),
    sa.CheckConstraint('travel_radius_km BETWEEN 1 AND 80', name=op.f('ck_practitioners_travel_radius_range')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_practitioners_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_practitioners')),
    sa.UniqueConstraint('user_id', name=op.f('uq_practitioners_user_id'))
    )
    with op.batch_alter_table('practitioners', schema=None) as batch_op:
        batch_op.create_index('ix_practitioners_status_listed_until', ['status', 'listed_until'], unique=False)

    op.create_table('availability_exceptions',
    sa.Column('practitioner_id', sa.Uuid(), nullable=False),
    sa.Column('on_date', sa.Date(), nullable=False),
    sa.Column('available', sa.Boolean(), nullable=False),
    sa.Column('start_time', sa.Time(), nullable=True),
    sa.Column('end_time', sa.Time(), nullable=True),
    sa.Column('modes', sa.JSON(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.CheckConstraint('(available AND start_time IS NOT NULL AND end_time > start_time) OR (NOT available AND start_time IS NULL AND end_time IS NULL)', name=op.f('ck_availability_exceptions_hours_when_available')),
    sa.ForeignKeyConstraint(['practitioner_id'], ['practitioners.id'], name=op.f('fk_availability_exceptions_practitioner_id_practitioners'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_availability_exceptions')),
    sa.UniqueConstraint('practitioner_id', 'on_date', 'start_time', name='uq_availability_exceptions_start')
    )
    with op.batch_alter_table('availability_exceptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_availability_exceptions_practitioner_id'), ['practitioner_id'], unique=False)

    op.create_table('availability_rules',
    sa.Column('practitioner_id', sa.Uuid(), nullable=False),
    sa.Column('weekday', sa.Integer(), nullable=False),
    sa.Column('start_time', sa.Time(), nullable=False),
    sa.Column('end_time', sa.Time(), nullable=False),
    sa.Column('modes', sa.JSON(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.CheckConstraint('end_time > start_time', name=op.f('ck_availability_rules_ends_after_start')),
    sa.CheckConstraint('weekday BETWEEN 0 AND 6', name=op.f('ck_availability_rules_weekday_range')),
    sa.ForeignKeyConstraint(['practitioner_id'], ['practitioners.id'], name=op.f('fk_availability_rules_practitioner_id_practitioners'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_availability_rules'))
    )
    with op.batch_alter_table('availability_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_availability_rules_practitioner_id'), ['practitioner_id'], unique=False)

    op.create_table('credentials',
    sa.Column('practitioner_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.Enum('hcpc', 'nmt_certificate', name='credential_kind', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('issuer', sa.String(length=200), nullable=True),
    sa.Column('programme', sa.String(length=200), nullable=True),
    sa.Column('training_hours', sa.Integer(), nullable=True),
    sa.Column('issued_on', sa.Date(), nullable=True),
    sa.Column('expires_on', sa.Date(), nullable=True),
    sa.Column('status', sa.Enum('pending', 'verified', 'rejected', 'superseded', name='credential_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by_id', sa.Uuid(), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('register_check', sa.Text(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.CheckConstraint('training_hours IS NULL OR training_hours >= 0', name=op.f('ck_credentials_hours_positive')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_credentials_decided_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['practitioner_id'], ['practitioners.id'], name=op.f('fk_credentials_practitioner_id_practitioners'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credentials'))
    )
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credentials_practitioner_id'), ['practitioner_id'], unique=False)
        batch_op.create_index('ix_credentials_status_submitted_at', ['status', 'submitted_at'], unique=False)
        batch_op.create_index('uq_credentials_verified_number', ['kind', 'number'], unique=True, sqlite_where=sa.text("status = 'verified'"), postgresql_where=sa.text("status = 'verified'"))

    op.create_table('practitioner_specialties',
    sa.Column('practitioner_id', sa.Uuid(), nullable=False),
    sa.Column('slug', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['practitioner_id'], ['practitioners.id'], name=op.f('fk_practitioner_specialties_practitioner_id_practitioners'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('practitioner_id', 'slug', name=op.f('pk_practitioner_specialties'))
    )
    with op.batch_alter_table('practitioner_specialties', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_practitioner_specialties_slug'), ['slug'], unique=False)

    op.create_table('credential_evidence',
    sa.Column('credential_id', sa.Uuid(), nullable=False),
    sa.Column('stored_name', sa.String(length=64), nullable=False),
    sa.Column('content_type', sa.String(length=40), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['credential_id'], ['credentials.id'], name=op.f('fk_credential_evidence_credential_id_credentials'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credential_evidence')),
    sa.UniqueConstraint('stored_name', name=op.f('uq_credential_evidence_stored_name'))
    )
    with op.batch_alter_table('credential_evidence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credential_evidence_credential_id'), ['credential_id'], unique=False)


def downgrade() -> None:
    unguard_audit_log()
    with op.batch_alter_table('credential_evidence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credential_evidence_credential_id'))

    op.drop_table('credential_evidence')
    with op.batch_alter_table('practitioner_specialties', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_practitioner_specialties_slug'))

    op.drop_table('practitioner_specialties')
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.drop_index('uq_credentials_verified_number', sqlite_where=sa.text("status = 'verified'"), postgresql_where=sa.text("status = 'verified'"))
        batch_op.drop_index('ix_credentials_status_submitted_at')
        batch_op.drop_index(batch_op.f('ix_credentials_practitioner_id'))

    op.drop_table('credentials')
    with op.batch_alter_table('availability_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_availability_rules_practitioner_id'))

    op.drop_table('availability_rules')
    with op.batch_alter_table('availability_exceptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_availability_exceptions_practitioner_id'))

    op.drop_table('availability_exceptions')
    with op.batch_alter_table('practitioners', schema=None) as batch_op:
        batch_op.drop_index('ix_practitioners_status_listed_until')

    op.drop_table('practitioners')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_status_created_at')

    op.drop_table('notifications')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_subject')
        batch_op.drop_index(batch_op.f('ix_audit_log_at'))

    op.drop_table('audit_log')
