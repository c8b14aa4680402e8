from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from errand.models.base import Base, TimestampMixin


class Approval(TimestampMixin, Base):
    """A human decision bound to one exact action: its canonical digest and its amount."""

    __tablename__ = "approvals"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    # The mode and scenario of what waits (a transaction or a job): an admin key sees and
    # decides only approvals of its own mode and scenarios.
    env: Mapped[str] = mapped_column(String(8), server_default="live")
    scenario: Mapped[str] = mapped_column(String(20), server_default="restaurant")
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[str] = mapped_column(String(40), index=True)
    policy_id: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending|approved|denied|expired|void
    message: Mapped[str] = mapped_column(Text)
    action: Mapped[dict[str, Any]]
    action_digest: Mapped[str] = mapped_column(String(64))
    amount_usd: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    expires_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(120))
    decided_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)
