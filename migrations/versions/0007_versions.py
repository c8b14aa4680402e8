"""versions that caches and providers read: organizations.policies_version, bumped with every
policy change so every process's policy cache knows at once that its copy is stale; and
idempotency_records.generation, bumped when an expired key is claimed again, so that request
gets a downstream key of its own instead of the first one's provider booking

Revision ID: 0007_versions
Revises: 0006_sandbox_hold_expiry
Create Date: 2026-11-29 22:30:00.000000

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0007_versions'
down_revision: str | Sequence[str] | None = '0006_sandbox_hold_expiry'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('organizations') as batch:
        batch.add_column(sa.Column('policies_version', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('idempotency_records') as batch:
        batch.add_column(sa.Column('generation', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('idempotency_records') as batch:
        batch.drop_column('generation')
    with op.batch_alter_table('organizations') as batch:
        batch.drop_column('policies_version')
