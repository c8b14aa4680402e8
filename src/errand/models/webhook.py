"""Outbound webhooks (errand.webhooks): endpoints an organization registered, one delivery per
event and endpoint, and each attempt to send it."""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from errand.kit import clock
from errand.kit.crypto import EncryptedJSON
from errand.models.base import Base, TimestampMixin


class WebhookEndpoint(TimestampMixin, Base):
    """Where an organization's events of one mode (``env``) are sent. ``events`` lists event types
    (or ``*``). ``secrets`` (encrypted at rest) is ``{"current": "whsec_…", "previous":
    "whsec_…"|None, "previous_until": ISO|None}``: after a rotation the previous secret signs too
    until ``previous_until``. ``consecutive_failures`` counts deliveries that failed every
    attempt in a row; ``disabled_reason`` says why ``enabled`` went false."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_org", "organization_id", "env", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # whk_…
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    env: Mapped[str] = mapped_column(String(8))
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(String(500))
    events: Mapped[list[Any]]
    secrets: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(40))
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)


class WebhookDelivery(TimestampMixin, Base):
    """One event for one endpoint: ``status`` pending | succeeded | failed. ``webhook_id`` is the
    stable ``webhook-id`` header (``msg_<event id>_<endpoint id>``) a receiver deduplicates on.
    ``next_attempt_at`` is when a pending delivery is due; ``claimed_until`` is the lease of the
    worker sending it now (another takes it over once the lease has passed: a crashed worker)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_event"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "created_at"),
        Index("ix_webhook_deliveries_job", "organization_id", "env", "job_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # whd_…
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    env: Mapped[str] = mapped_column(String(8))
    event_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    event_type: Mapped[str] = mapped_column(String(60))
    # The execution job the event is about, if any (a job's GET counts its deliveries).
    job_id: Mapped[str | None] = mapped_column(String(40))
    webhook_id: Mapped[str] = mapped_column(String(100))
    # The message body's ``data`` and ``timestamp``: ids, statuses, amounts, never personal data.
    payload: Mapped[dict[str, Any]]
    occurred_at: Mapped[datetime] = mapped_column(default=clock.now)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    # The pending attempt was asked for by hand (a redelivery): one attempt, no retries after it.
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
    next_attempt_at: Mapped[datetime | None]
    claimed_until: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]


class WebhookAttempt(Base):
    """One try at sending a delivery: the response's status code (none if no response came), how
    long it took, a short error (never a secret) and a short excerpt of the response body."""

    __tablename__ = "webhook_attempts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # wha_…
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(300))
    response_excerpt: Mapped[str | None] = mapped_column(String(300))
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
    attempted_at: Mapped[datetime] = mapped_column(default=clock.now)
