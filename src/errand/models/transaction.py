from decimal import Decimal
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from errand.kit.crypto import EncryptedJSON
from errand.models.base import Base, TimestampMixin


class Transaction(TimestampMixin, Base):
    """One booking made through the reservations dialect (or MCP), and its reservation."""

    __tablename__ = "transactions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    api_key_id: Mapped[str | None] = mapped_column(String(40))
    # Test or live, from the key that made it: the two are separate worlds (a key of one mode never sees the other's).
    env: Mapped[str] = mapped_column(String(8), server_default="live")
    scenario: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    provider_id: Mapped[str] = mapped_column(String(60))
    venue_id: Mapped[str] = mapped_column(String(80))
    venue_name: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64))
    party_size: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime]
    price_per_person_usd: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    amount_usd: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    customer: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON)
    reservation_id: Mapped[str | None] = mapped_column(String(60))
    confirmation: Mapped[str | None] = mapped_column(String(60))
    # The provider's hold while an approval is pending: {hold_id, kind, details}; or, while a
    # cancel is being carried out at the provider, that intent: {kind: "cancel", reason, requested_at, …}.
    pending_action: Mapped[dict[str, Any] | None]
    cancelled_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(String(500))
