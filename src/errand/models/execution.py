"""Automations' run-time tables: events taken in, executions of agents, and each step's receipt
(errand.automations)."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from errand.kit import clock
from errand.kit.crypto import EncryptedJSON
from errand.models.base import Base, TimestampMixin


class AutomationEvent(Base):
    """An event on the automations bus: ingested from a product (``POST /api/events/ingest``) or
    one of Errand's own (``source_product`` "errand", taken from the outbox). ``matched_at`` is
    null until the runner matched it against the agents; the payload may carry a product's
    personal data, so it is encrypted at rest."""

    __tablename__ = "automation_events"
    __table_args__ = (
        Index("ix_automation_events_unmatched", "matched_at", "received_at"),
        Index("ix_automation_events_org", "organization_id", "env", "received_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # evt_…
    # The envelope's own ``id`` when it gave one (de-duplication per agent); else ``id``.
    event_key: Mapped[str] = mapped_column(String(200))
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    env: Mapped[str] = mapped_column(String(8))
    source_product: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(100))
    client_id: Mapped[str | None] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON)
    event_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    received_at: Mapped[datetime] = mapped_column(default=clock.now)
    matched_at: Mapped[datetime | None]


class Execution(TimestampMixin, Base):
    """One run of an agent for one event. ``definition`` is the agent's trigger, conditions and
    steps as they were when the run began, so editing an agent never changes a run under way.
    ``position`` is the index of the next step to run (its receipt not yet written);
    ``resume_at`` is when a ``wait`` step is over; ``lease_until`` is how long the runner that
    holds the execution may keep it before another may take it over (a crashed process)."""

    __tablename__ = "executions"
    __table_args__ = (
        Index("ix_executions_org_created", "organization_id", "env", "created_at"),
        Index("ix_executions_agent", "organization_id", "env", "agent_id", "created_at"),
        Index("ix_executions_dedup", "organization_id", "env", "agent_id", "event_key"),
        Index("ix_executions_status_resume", "status", "resume_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # exec_…
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    env: Mapped[str] = mapped_column(String(8))
    agent_id: Mapped[str] = mapped_column(String(60))
    event_id: Mapped[str] = mapped_column(ForeignKey("automation_events.id"))
    event_key: Mapped[str] = mapped_column(String(200))
    definition: Mapped[dict[str, Any]]
    # pending | running | waiting_approval | completed | failed | cancelled
    status: Mapped[str] = mapped_column(String(20))
    # Why it failed or was cancelled: approval_expired, approval_denied, credit_insufficient,
    # llm_not_configured, template_error, step_failed, cancelled …
    reason: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(Text)
    retry_of: Mapped[str | None] = mapped_column(String(40))
    position: Mapped[int] = mapped_column(Integer, default=0)
    resume_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]


class ExecutionStep(Base):
    """A step's receipt in an execution's trace: written when the step starts to wait (an
    approval gate, a wait) and completed, failed or skipped in the same transaction that moves
    the execution on, so a completed step is never run again. Its output may carry personal
    data (a model's answer about an event), so it is encrypted at rest."""

    __tablename__ = "execution_steps"
    __table_args__ = (UniqueConstraint("execution_id", "step_id", name="uq_execution_steps_step"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # stp_…
    execution_id: Mapped[str] = mapped_column(ForeignKey("executions.id", ondelete="CASCADE"), index=True)
    step_id: Mapped[str] = mapped_column(String(64))
    step_type: Mapped[str] = mapped_column(String(20))
    position: Mapped[int] = mapped_column(Integer)
    # completed | failed | skipped | waiting_approval | waiting
    status: Mapped[str] = mapped_column(String(20))
    output: Mapped[Any] = mapped_column(EncryptedJSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text)
    credits_used: Mapped[int] = mapped_column(Integer, default=0)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=clock.now)
    completed_at: Mapped[datetime | None]
