"""executions: events taken in by automations, executions of agents, step receipts; the
outbox's link to the execution that caused an event (the loop guard)

Revision ID: 0010_executions
Revises: 0009_automations
Create Date: 2026-11-30 03:00:00.000000

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0010_executions'
down_revision: str | Sequence[str] | None = '0009_automations'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'automation_events',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('event_key', sa.String(length=200), nullable=False),
        sa.Column('organization_id', sa.String(length=40), nullable=False),
        sa.Column('env', sa.String(length=8), nullable=False),
        sa.Column('source_product', sa.String(length=40), nullable=False),
        sa.Column('event_type', sa.String(length=100), nullable=False),
        sa.Column('client_id', sa.String(length=100), nullable=True),
        sa.Column('payload', sa.Text(), nullable=False),
        sa.Column('metadata', sa.JSON(), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('matched_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_automation_events_organization_id_organizations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_automation_events')),
    )
    op.create_index('ix_automation_events_unmatched', 'automation_events', ['matched_at', 'received_at'])
    op.create_index('ix_automation_events_org', 'automation_events', ['organization_id', 'env', 'received_at'])
    op.create_table(
        'executions',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('organization_id', sa.String(length=40), nullable=False),
        sa.Column('env', sa.String(length=8), nullable=False),
        sa.Column('agent_id', sa.String(length=60), nullable=False),
        sa.Column('event_id', sa.String(length=40), nullable=False),
        sa.Column('event_key', sa.String(length=200), nullable=False),
        sa.Column('definition', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('reason', sa.String(length=40), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('retry_of', sa.String(length=40), nullable=True),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('resume_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_executions_organization_id_organizations')),
        sa.ForeignKeyConstraint(['event_id'], ['automation_events.id'],
                                name=op.f('fk_executions_event_id_automation_events')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_executions')),
    )
    op.create_index('ix_executions_org_created', 'executions', ['organization_id', 'env', 'created_at'])
    op.create_index('ix_executions_agent', 'executions', ['organization_id', 'env', 'agent_id', 'created_at'])
    op.create_index('ix_executions_dedup', 'executions', ['organization_id', 'env', 'agent_id', 'event_key'])
    op.create_index('ix_executions_status_resume', 'executions', ['status', 'resume_at'])
    op.create_table(
        'execution_steps',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('execution_id', sa.String(length=40), nullable=False),
        sa.Column('step_id', sa.String(length=64), nullable=False),
        sa.Column('step_type', sa.String(length=20), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('output', sa.Text(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('credits_used', sa.Integer(), nullable=False),
        sa.Column('duration_ms', sa.Integer(), nullable=True),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['execution_id'], ['executions.id'], ondelete='CASCADE',
                                name=op.f('fk_execution_steps_execution_id_executions')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_execution_steps')),
        sa.UniqueConstraint('execution_id', 'step_id', name='uq_execution_steps_step'),
    )
    op.create_index(op.f('ix_execution_steps_execution_id'), 'execution_steps', ['execution_id'])
    with op.batch_alter_table('outbox_events') as batch:
        batch.add_column(sa.Column('execution_id', sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox_events') as batch:
        batch.drop_column('execution_id')
    op.drop_index(op.f('ix_execution_steps_execution_id'), table_name='execution_steps')
    op.drop_table('execution_steps')
    for name in ('ix_executions_status_resume', 'ix_executions_dedup', 'ix_executions_agent',
                 'ix_executions_org_created'):
        op.drop_index(name, table_name='executions')
    op.drop_table('executions')
    op.drop_index('ix_automation_events_org', table_name='automation_events')
    op.drop_index('ix_automation_events_unmatched', table_name='automation_events')
    op.drop_table('automation_events')
