"""outbox: Errand's own events, written in the transaction of the change they report and
dispatched to the event consumers (automations, outbound webhooks) afterwards

Revision ID: 0008_outbox
Revises: 0007_versions
Create Date: 2026-11-30 00:40:00.000000

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0008_outbox'
down_revision: str | Sequence[str] | None = '0007_versions'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNDISPATCHED = sa.text('dispatched_at IS NULL')


def upgrade() -> None:
    op.create_table(
        'outbox_events',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('organization_id', sa.String(length=40), nullable=False),
        sa.Column('env', sa.String(length=8), nullable=False),
        sa.Column('event_type', sa.String(length=60), nullable=False),
        sa.Column('subject_type', sa.String(length=40), nullable=False),
        sa.Column('subject_id', sa.String(length=40), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_outbox_events_organization_id_organizations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_events')),
    )
    op.create_index('ix_outbox_events_undispatched', 'outbox_events', ['id'],
                    postgresql_where=_UNDISPATCHED, sqlite_where=_UNDISPATCHED)
    op.create_index('ix_outbox_events_org', 'outbox_events', ['organization_id', 'env', 'id'])
    op.create_index('ix_outbox_events_subject', 'outbox_events', ['subject_type', 'subject_id'])


def downgrade() -> None:
    op.drop_index('ix_outbox_events_subject', table_name='outbox_events')
    op.drop_index('ix_outbox_events_org', table_name='outbox_events')
    op.drop_index('ix_outbox_events_undispatched', table_name='outbox_events')
    op.drop_table('outbox_events')
