from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from errand.kit.crypto import EncryptedJSON
from errand.models.base import Base, TimestampMixin


class Job(TimestampMixin, Base):
    """An execution job: one booking the executor carries out in the background."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("organization_id", "key_env", "idempotency_key", name="uq_jobs_idempotency_key"),
        Index("ix_jobs_org_created", "organization_id", "created_at", "id"),
        Index("ix_jobs_status_heartbeat", "status", "heartbeat_at"),
        Index("ix_jobs_payment_due", "payment_status", "payment_expires_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    api_key_id: Mapped[str] = mapped_column(String(40))
    key_env: Mapped[str] = mapped_column(String(8))
    scenario: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(24))
    params: Mapped[dict[str, Any]]
    # The traveler's personal data (names, contact, passport): encrypted at rest.
    profile: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON)
    consent: Mapped[dict[str, Any]]
    client_metadata: Mapped[dict[str, Any]]
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    handoff_url: Mapped[str | None] = mapped_column(Text)
    session_url: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    used_fallback: Mapped[bool] = mapped_column(default=False)
    provider_id: Mapped[str | None] = mapped_column(String(60))
    result: Mapped[dict[str, Any] | None]
    # Set while an approval is pending, and to the approved action once decided.
    pending_action: Mapped[dict[str, Any] | None]
    # Written before a checkout is attempted, so a re-run after a crash repeats that very
    # checkout (same offer, same idempotency key) instead of holding a second offer.
    checkout_intent: Mapped[dict[str, Any] | None]
    # Who runs it: a claim token per run, its heartbeat, and how many runs were started.
    run_token: Mapped[str | None] = mapped_column(String(40))
    run_count: Mapped[int] = mapped_column(Integer, default=0)
    heartbeat_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    # The payment after a handoff (errand.jobs.payments): awaiting | paid | expired, None before a
    # handoff; the hold's expiry as the provider gave it at pause time, and when the end user paid.
    payment_status: Mapped[str | None] = mapped_column(String(16))
    payment_expires_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
