from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from errand.kit.crypto import SealedJSON
from errand.models.base import Base, TimestampMixin


class IdempotencyRecord(TimestampMixin, Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("organization_id", "env", "scope", "key", name="uq_idempotency_records_key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    # Test and live keys of one organization never share a record (the same key is two records).
    env: Mapped[str] = mapped_column(String(8), server_default="live")
    scope: Mapped[str] = mapped_column(String(60))  # the operation, e.g. restaurant.book
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # in_progress | completed
    # Token of the request holding the claim; a takeover of a stale claim changes it.
    lock_token: Mapped[str] = mapped_column(String(40))
    locked_at: Mapped[datetime]
    # The response replayed for the key ({"ok": …} or {"error": …}); it carries the customer's
    # name, email and phone, so it is sealed (Fernet). Rows stored in clear before sealing
    # still replay until they expire (ERRAND_IDEMPOTENCY_TTL_HOURS).
    result: Mapped[dict[str, Any] | None] = mapped_column(SealedJSON)
    expires_at: Mapped[datetime]
    # 0 for a key's first request; bumped when the key is claimed again after it expired, so that
    # request gets a downstream key of its own (errand.guard.idempotency).
    generation: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
