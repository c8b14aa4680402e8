from typing import Any

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from errand.kit.crypto import EncryptedJSON
from errand.models.base import Base, TimestampMixin


class BookingProfile(TimestampMixin, Base):
    """A traveler's details kept by Errand, so jobs can send ``profileId`` instead of the data."""

    __tablename__ = "booking_profiles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    # Test or live, from the key that stored it; a job of the other mode cannot use it.
    env: Mapped[str] = mapped_column(String(8), server_default="live")
    data: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON)
