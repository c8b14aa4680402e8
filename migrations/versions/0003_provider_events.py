"""provider events: one receipt per provider, type and reference (dedupe_key)

Revision ID: 0003_provider_events
Revises: 0002_browser
Create Date: 2026-11-29 18:00:00.000000

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0003_provider_events'
down_revision: str | Sequence[str] | None = '0002_browser'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('provider_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dedupe_key', sa.String(length=64), nullable=True))
        batch_op.create_index('uq_provider_events_dedupe_key', ['dedupe_key'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('provider_events', schema=None) as batch_op:
        batch_op.drop_index('uq_provider_events_dedupe_key')
        batch_op.drop_column('dedupe_key')
