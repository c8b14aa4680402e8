from datetime import datetime

from sqlalchemy import Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from errand.kit.crypto import EncryptedJSON
from errand.models.base import Base, TimestampMixin


class SandboxSlot(Base):
    """Units taken at one bookable unit of a sandbox venue (a slot start, a night, a flight date).

    Capacity is enforced with one conditional UPDATE on this row, which is atomic on both
    SQLite and PostgreSQL: it can never be oversold.
    """

    __tablename__ = "sandbox_slots"
    __table_args__ = (UniqueConstraint("venue_id", "unit", "slot", name="uq_sandbox_slots_unit"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    venue_id: Mapped[str] = mapped_column(String(80))
    unit: Mapped[str] = mapped_column(String(40))  # room type, cabin, seat type; "table" for restaurants
    slot: Mapped[str] = mapped_column(String(32))  # local date or date-time
    capacity: Mapped[int] = mapped_column(Integer)
    taken: Mapped[int] = mapped_column(Integer, default=0)


class SandboxBooking(TimestampMixin, Base):
    """A hold or a booking at a sandbox provider; what a real provider would keep on its side."""

    __tablename__ = "sandbox_bookings"
    __table_args__ = (UniqueConstraint("provider_id", "idempotency_key", name="uq_sandbox_bookings_key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(60))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    venue_id: Mapped[str] = mapped_column(String(80), index=True)
    unit: Mapped[str] = mapped_column(String(40))
    slot: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # held | booked | cancelled | released | expired
    hold_expires_at: Mapped[datetime | None]
    confirmation: Mapped[str | None] = mapped_column(String(40))
    guest: Mapped[dict[str, str] | None] = mapped_column(EncryptedJSON)
