from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from errand.kit import clock
from errand.models.base import Base


class ProviderEvent(Base):
    """A signed event a provider sent Errand (a payment, a takeover, a lapsed hold), kept once per webhook id.

    The primary key is the sender's ``webhook-id``, so a redelivery is recognised and changes
    nothing; ``dedupe_key`` (a hash of provider, type and reference or hold, for events about
    a hold) is unique, so the same payment reported under another webhook id is kept once;
    ``job_id`` is the job it was matched to, if any.
    """

    __tablename__ = "provider_events"
    __table_args__ = (
        Index("ix_provider_events_job", "job_id"),
        Index("uq_provider_events_dedupe_key", "dedupe_key", unique=True),
    )

    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(60))
    type: Mapped[str] = mapped_column(String(40))
    organization_id: Mapped[str | None] = mapped_column(String(40))
    job_id: Mapped[str | None] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]]
    dedupe_key: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(default=clock.now)
