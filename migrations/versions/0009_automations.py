"""automations: agents, the per-organization status of system agents, the credits ledger
(append-only) and the monthly credit allocations

Revision ID: 0009_automations
Revises: 0008_outbox
Create Date: 2026-11-30 01:00:00.000000

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0009_automations'
down_revision: str | Sequence[str] | None = '0008_outbox'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column]:
    return [sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
            sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False)]


def upgrade() -> None:
    op.create_table(
        'agents',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('organization_id', sa.String(length=40), nullable=False),
        sa.Column('env', sa.String(length=8), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('type', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('category', sa.String(length=40), nullable=True),
        sa.Column('trigger', sa.JSON(), nullable=True),
        sa.Column('conditions', sa.JSON(), nullable=False),
        sa.Column('steps', sa.JSON(), nullable=False),
        sa.Column('conflict_behavior', sa.String(length=16), nullable=False),
        sa.Column('client_scope', sa.JSON(), nullable=False),
        sa.Column('execution_limit', sa.JSON(), nullable=True),
        sa.Column('source_id', sa.String(length=60), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_agents')),
    )
    op.create_index(op.f('ix_agents_organization_id'), 'agents', ['organization_id'])
    op.create_index('ix_agents_organization_id_env_status', 'agents', ['organization_id', 'env', 'status'])
    op.create_table(
        'agent_statuses',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('organization_id', sa.String(length=40), nullable=False),
        sa.Column('env', sa.String(length=8), nullable=False),
        sa.Column('agent_id', sa.String(length=60), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_agent_statuses_organization_id_organizations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_statuses')),
        sa.UniqueConstraint('organization_id', 'env', 'agent_id', name='uq_agent_statuses_agent'),
    )
    op.create_table(
        'credit_entries',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('organization_id', sa.String(length=40), nullable=False),
        sa.Column('env', sa.String(length=8), nullable=False),
        sa.Column('agent_id', sa.String(length=60), nullable=False),
        sa.Column('execution_id', sa.String(length=40), nullable=True),
        sa.Column('step_id', sa.String(length=64), nullable=True),
        sa.Column('model', sa.String(length=16), nullable=True),
        sa.Column('credits', sa.Integer(), nullable=False),
        sa.Column('charged_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_credit_entries_organization_id_organizations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_entries')),
    )
    op.create_index('ix_credit_entries_organization_id_env_charged_at', 'credit_entries',
                    ['organization_id', 'env', 'charged_at'])
    op.create_table(
        'credit_allocations',
        sa.Column('organization_id', sa.String(length=40), nullable=False),
        sa.Column('monthly_credits', sa.Integer(), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_credit_allocations_organization_id_organizations')),
        sa.PrimaryKeyConstraint('organization_id', name=op.f('pk_credit_allocations')),
    )


def downgrade() -> None:
    op.drop_table('credit_allocations')
    op.drop_index('ix_credit_entries_organization_id_env_charged_at', table_name='credit_entries')
    op.drop_table('credit_entries')
    op.drop_table('agent_statuses')
    op.drop_index('ix_agents_organization_id_env_status', table_name='agents')
    op.drop_index(op.f('ix_agents_organization_id'), table_name='agents')
    op.drop_table('agents')
