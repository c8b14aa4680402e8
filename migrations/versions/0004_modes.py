"""test and live modes: an env column on transactions, idempotency records, booking profiles
and approvals (with the approval's scenario); idempotency and job keys unique per mode

Existing rows were all made before modes were kept apart and count as ``live``; an existing
approval takes the scenario of what it gates (a transaction is a restaurant booking, a job
names its own).

Revision ID: 0004_modes
Revises: 0003_provider_events
Create Date: 2026-11-29 17:50:00.000000

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0004_modes'
down_revision: str | Sequence[str] | None = '0003_provider_events'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('env', sa.String(length=8), server_default='live', nullable=False))

    with op.batch_alter_table('booking_profiles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('env', sa.String(length=8), server_default='live', nullable=False))

    with op.batch_alter_table('approvals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('env', sa.String(length=8), server_default='live', nullable=False))
        batch_op.add_column(sa.Column('scenario', sa.String(length=20), server_default='restaurant', nullable=False))
    op.execute(
        "UPDATE approvals SET "
        "env = (SELECT jobs.key_env FROM jobs WHERE jobs.id = approvals.subject_id), "
        "scenario = (SELECT jobs.scenario FROM jobs WHERE jobs.id = approvals.subject_id) "
        "WHERE subject_type = 'job' AND EXISTS (SELECT 1 FROM jobs WHERE jobs.id = approvals.subject_id)"
    )

    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('env', sa.String(length=8), server_default='live', nullable=False))
        batch_op.drop_constraint('uq_idempotency_records_key', type_='unique')
        batch_op.create_unique_constraint('uq_idempotency_records_key', ['organization_id', 'env', 'scope', 'key'])

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_constraint('uq_jobs_idempotency_key', type_='unique')
        batch_op.create_unique_constraint('uq_jobs_idempotency_key', ['organization_id', 'key_env', 'idempotency_key'])


def downgrade() -> None:
    # Test-mode rows would collide with live ones under the narrower keys: they go first.
    op.execute("DELETE FROM idempotency_records WHERE env <> 'live'")
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_constraint('uq_jobs_idempotency_key', type_='unique')
        batch_op.create_unique_constraint('uq_jobs_idempotency_key', ['organization_id', 'idempotency_key'])

    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.drop_constraint('uq_idempotency_records_key', type_='unique')
        batch_op.create_unique_constraint('uq_idempotency_records_key', ['organization_id', 'scope', 'key'])
        batch_op.drop_column('env')

    with op.batch_alter_table('approvals', schema=None) as batch_op:
        batch_op.drop_column('scenario')
        batch_op.drop_column('env')

    with op.batch_alter_table('booking_profiles', schema=None) as batch_op:
        batch_op.drop_column('env')

    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.drop_column('env')
