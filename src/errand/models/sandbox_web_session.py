from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, text
from sqlalchemy.orm import Mapped, mapped_column

from errand.kit.crypto import EncryptedJSON
from errand.models.base import Base, TimestampMixin


class SandboxWebSession(TimestampMixin, Base):
    """A visitor's way through one sandbox booking web site (search → offer → details → checkout).

    Kept in the database, not in process memory, so that any process serving the sandbox can
    continue it and a person can take it over from another browser. ``token`` is the secret
    in the session's URLs; a takeover replaces it, so the old URLs stop working. ``guest``
    holds the filled details (personal data, encrypted at rest); card data never comes here.
    """

    __tablename__ = "sandbox_web_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(60))
    token: Mapped[str] = mapped_column(String(64), unique=True)
    scenario: Mapped[str] = mapped_column(String(16))
    # What was searched: venue, city, route, dates and quantity, as the site's form gave them.
    search: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The chosen offer: venue_id, unit, start, end, quantity (as the job API's offers name them).
    choice: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    guest: Mapped[dict[str, str] | None] = mapped_column(EncryptedJSON)
    # The details form's "Booking reference": the idempotency key of the hold placed from here.
    reference: Mapped[str | None] = mapped_column(String(128))
    # The obstacle this session meets at the details step (login | captcha), and when it was passed.
    obstacle: Mapped[str | None] = mapped_column(String(16))
    obstacle_cleared_at: Mapped[datetime | None]
    captcha_answer: Mapped[str | None] = mapped_column(String(16))
    # Offers that sold out under this visitor while they typed (hidden from its results).
    vanished: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    # The one-time continue link shown at an obstacle, and when (if ever) it was opened.
    takeover_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    takeover_used_at: Mapped[datetime | None]
    hold_id: Mapped[str | None] = mapped_column(String(40), index=True)
    # When Errand was told that this session's hold expired unpaid (so it is told once).
    expiry_reported_at: Mapped[datetime | None]
    holds_placed: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    expires_at: Mapped[datetime]
