"""sandbox hold expiry indexes: a booking finds its venue's lapsed holds without reading the venue's other bookings

``ix_sandbox_bookings_venue_hold`` (venue_id, status, hold_expires_at) replaces the index on
venue_id alone, which it covers; ``ix_sandbox_bookings_status_expiry`` (status,
hold_expires_at) serves the periodic sweep of lapsed holds and the expiry reports.

Revision ID: 0006_sandbox_hold_expiry
Revises: 0005_job_payment
Create Date: 2026-11-29 21:30:00.000000

"""
from collections.abc import Sequence

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0006_sandbox_hold_expiry'
down_revision: str | Sequence[str] | None = '0005_job_payment'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_sandbox_bookings_venue_hold', 'sandbox_bookings', ['venue_id', 'status', 'hold_expires_at'])
    op.create_index('ix_sandbox_bookings_status_expiry', 'sandbox_bookings', ['status', 'hold_expires_at'])
    op.drop_index('ix_sandbox_bookings_venue_id', table_name='sandbox_bookings')


def downgrade() -> None:
    op.create_index('ix_sandbox_bookings_venue_id', 'sandbox_bookings', ['venue_id'])
    op.drop_index('ix_sandbox_bookings_status_expiry', table_name='sandbox_bookings')
    op.drop_index('ix_sandbox_bookings_venue_hold', table_name='sandbox_bookings')
