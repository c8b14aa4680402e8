from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from errand.kit import clock
from errand.models.base import Base

_UNDISPATCHED = text("dispatched_at IS NULL")


class OutboxEvent(Base):
    """One of Errand's own events (``job.completed``, ``approval.requested`` …), written in the
    transaction of the change it reports and handed to the event consumers afterwards
    (:mod:`errand.outbox`). ``id`` grows with every insert; ``dispatched_at`` is null until the
    event was handed to every consumer. The payload holds ids, statuses, amounts and venue
    names, never personal data."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        # The dispatcher's scan: the undispatched events, oldest first.
        Index("ix_outbox_events_undispatched", "id", postgresql_where=_UNDISPATCHED, sqlite_where=_UNDISPATCHED),
        # A consumer's read of one organization's events in one mode.
        Index("ix_outbox_events_org", "organization_id", "env", "id"),
        Index("ix_outbox_events_subject", "subject_type", "subject_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    env: Mapped[str] = mapped_column(String(8))
    event_type: Mapped[str] = mapped_column(String(60))
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]]
    occurred_at: Mapped[datetime] = mapped_column(default=clock.now)
    dispatched_at: Mapped[datetime | None]
    # The automation execution whose step caused the change, if one did: such an event carries
    # ``metadata.agent_triggered`` on the automations bus and triggers no agent (the loop guard).
    execution_id: Mapped[str | None] = mapped_column(String(40))
