"""job payment state: payment_status, payment_expires_at, paid_at on jobs; expiry_reported_at on
sandbox holds

A job paused at payment before this revision gets its payment from its result: ``paid`` (and
``completed``, as the payment made it) where a provider reported the payment, ``expired`` where
one reported the hold lapsed, else ``awaiting`` until the hold's recorded expiry. Lapsed sandbox
holds that exist already count as reported: the sweep tells Errand only of holds lapsing from now.

Revision ID: 0005_job_payment
Revises: 0004_modes
Create Date: 2026-11-29 18:30:00.000000

"""
import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0005_job_payment'
down_revision: str | Sequence[str] | None = '0004_modes'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _backfill_jobs() -> None:
    bind = op.get_bind()
    jobs = sa.table('jobs', sa.column('id', sa.String), sa.column('status', sa.String), sa.column('result', sa.JSON),
                    sa.column('handoff_url', sa.Text), sa.column('summary', sa.Text),
                    sa.column('completed_at', sa.DateTime(timezone=True)), sa.column('payment_status', sa.String),
                    sa.column('payment_expires_at', sa.DateTime(timezone=True)),
                    sa.column('paid_at', sa.DateTime(timezone=True)))
    rows = bind.execute(sa.select(jobs.c.id, jobs.c.result).where(jobs.c.status == 'paused_payment')).all()
    for job_id, raw in rows:
        result = json.loads(raw) if isinstance(raw, str) else (raw or {})
        values: dict[str, object] = {'payment_expires_at': _when(result.get('holdExpiresAt'))}
        if result.get('paidAt'):
            paid_at = _when(result['paidAt'])
            values.update(payment_status='paid', paid_at=paid_at, status='completed', completed_at=paid_at,
                          handoff_url=None,
                          summary=f"Booked: the end user paid, confirmation {result.get('confirmation')}")
        elif result.get('holdStatus') == 'expired':
            values.update(payment_status='expired', handoff_url=None)
        else:
            values.update(payment_status='awaiting')
        bind.execute(sa.update(jobs).where(jobs.c.id == job_id).values(**values))


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payment_status', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('payment_expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_jobs_payment_due', ['payment_status', 'payment_expires_at'], unique=False)
    _backfill_jobs()

    with op.batch_alter_table('sandbox_bookings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expiry_reported_at', sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE sandbox_bookings SET expiry_reported_at = updated_at WHERE status = 'expired'")


def downgrade() -> None:
    with op.batch_alter_table('sandbox_bookings', schema=None) as batch_op:
        batch_op.drop_column('expiry_reported_at')

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_payment_due')
        batch_op.drop_column('paid_at')
        batch_op.drop_column('payment_expires_at')
        batch_op.drop_column('payment_status')
