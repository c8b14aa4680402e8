from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from errand.kit import clock
from errand.models.base import Base


class ProviderOutcome(Base):
    """How one job attempt at one provider ended: what the provider metrics count."""

    __tablename__ = "provider_outcomes"
    __table_args__ = (Index("ix_provider_outcomes_lookup", "organization_id", "provider_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    provider_id: Mapped[str] = mapped_column(String(60))
    job_id: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(20))  # accepted | failed | manual_override
    reason: Mapped[str | None] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
