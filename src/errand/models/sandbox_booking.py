from datetime import datetime

from sqlalchemy import JSON, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from errand.kit.crypto import EncryptedJSON
from errand.models.base import Base, TimestampMixin


class SandboxSlot(Base):
    """Units taken at one bookable unit of a sandbox venue (a slot start, a night, a flight date).

    Capacity is enforced with one conditional UPDATE on this row, which is atomic on both
    SQLite and PostgreSQL: it can never be oversold. The sandbox also counts a flaky
    provider's deliberate failures on rows of the same shape (``unit`` ``flaky:<provider>``).
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
    """A hold or a booking at a sandbox provider; what a real provider would keep on its side.

    ``slot``/``slot_end`` and ``quantity`` are what the customer booked (a table's start, a
    stay's check-in and checkout dates, a departure, a performance; covers, adults,
    passengers, tickets). ``slots`` is what that takes from inventory: units per
    ``sandbox_slots`` slot of ``(venue_id, unit)`` (one room on every night of a stay).
    """

    __tablename__ = "sandbox_bookings"
    __table_args__ = (
        UniqueConstraint("provider_id", "idempotency_key", name="uq_sandbox_bookings_key"),
        # Every booking first expires its venue's lapsed holds (errand.sandbox.inventory.take):
        # found here without reading the venue's other bookings.
        Index("ix_sandbox_bookings_venue_hold", "venue_id", "status", "hold_expires_at"),
        # The periodic sweep of lapsed holds and the expiry reports look rows up by status and expiry.
        Index("ix_sandbox_bookings_status_expiry", "status", "hold_expires_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(60))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    scenario: Mapped[str] = mapped_column(String(16), default="restaurant", server_default="restaurant")
    venue_id: Mapped[str] = mapped_column(String(80))
    unit: Mapped[str] = mapped_column(String(40))
    slot: Mapped[str] = mapped_column(String(32))
    slot_end: Mapped[str | None] = mapped_column(String(32))
    quantity: Mapped[int] = mapped_column(Integer)
    slots: Mapped[dict[str, int]] = mapped_column(JSON, default=dict, server_default=text("'{}'"))
    price_usd: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # held | booked | cancelled | released | expired
    hold_expires_at: Mapped[datetime | None]
    # When the provider told Errand that this hold lapsed unpaid (errand.sandbox.notify.report_lapsed_holds).
    expiry_reported_at: Mapped[datetime | None]
    confirmation: Mapped[str | None] = mapped_column(String(40))
    # Set on holds that wait for payment at the sandbox's checkout page (the handoff URL's secret).
    handoff_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    guest: Mapped[dict[str, str] | None] = mapped_column(EncryptedJSON)
