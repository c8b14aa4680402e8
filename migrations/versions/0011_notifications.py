"""notifications: the notification outbox, organizations' contacts for role recipients, and the
messages the sandbox's fake SMS and chat providers received

Revision ID: 0011_notifications
Revises: 0010_executions
Create Date: 2026-11-30 04:00:00.000000

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0011_notifications'
down_revision: str | Sequence[str] | None = '0010_executions'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'notifications',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('organization_id', sa.String(length=40), nullable=False),
        sa.Column('env', sa.String(length=8), nullable=False),
        sa.Column('execution_id', sa.String(length=40), nullable=False),
        sa.Column('step_id', sa.String(length=64), nullable=False),
        sa.Column('recipient_index', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('recipient_role', sa.String(length=20), nullable=True),
        sa.Column('recipient', sa.Text(), nullable=False),
        sa.Column('subject', sa.Text(), nullable=True),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('provider_message_id', sa.String(length=200), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_notifications_organization_id_organizations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
        sa.UniqueConstraint('execution_id', 'step_id', 'recipient_index', name='uq_notifications_recipient'),
    )
    op.create_index('ix_notifications_due', 'notifications', ['status', 'next_attempt_at'])
    op.create_index('ix_notifications_org', 'notifications', ['organization_id', 'env', 'created_at'])
    op.create_table(
        'organization_contacts',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('organization_id', sa.String(length=40), nullable=False),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.Column('email', sa.Text(), nullable=True),
        sa.Column('phone', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_organization_contacts_organization_id_organizations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_organization_contacts')),
        sa.UniqueConstraint('organization_id', 'role', name='uq_organization_contacts_role'),
    )
    op.create_table(
        'sandbox_messages',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('account', sa.String(length=64), nullable=True),
        sa.Column('to', sa.Text(), nullable=False),
        sa.Column('sender', sa.Text(), nullable=True),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sandbox_messages')),
    )
    op.create_index('ix_sandbox_messages_kind', 'sandbox_messages', ['kind', 'received_at'])


def downgrade() -> None:
    op.drop_index('ix_sandbox_messages_kind', table_name='sandbox_messages')
    op.drop_table('sandbox_messages')
    op.drop_table('organization_contacts')
    op.drop_index('ix_notifications_org', table_name='notifications')
    op.drop_index('ix_notifications_due', table_name='notifications')
    op.drop_table('notifications')
