"""Automations' tables: agents, the per-organization status of system agents, the credits ledger
and the monthly allocations (errand.automations)."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from errand.kit import clock
from errand.models.base import Base, TimestampMixin


class Agent(TimestampMixin, Base):
    """An organization's agent definition: a trigger, conditions and steps.

    System agents are Errand's own definitions (``errand.automations.system_agents``), shown to
    every organization with ``organization_id`` "system"; they are not rows here, so this
    column names a real organization (no foreign key, so that the engine may keep the reserved
    value too)."""

    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(40), index=True)
    env: Mapped[str] = mapped_column(String(8))  # live | test: the mode of the key that made it
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    type: Mapped[str] = mapped_column(String(16))  # custom | template | cloned
    status: Mapped[str] = mapped_column(String(16))  # draft | active | paused | error
    category: Mapped[str | None] = mapped_column(String(40))
    trigger: Mapped[dict[str, Any] | None]
    conditions: Mapped[list[Any]]
    steps: Mapped[list[Any]]
    conflict_behavior: Mapped[str] = mapped_column(String(16), default="additive")
    client_scope: Mapped[Any] = mapped_column(JSON, default="all")  # "all" | {include} | {exclude}
    execution_limit: Mapped[dict[str, Any] | None]
    # Where it came from: the template or agent it was cloned from.
    source_id: Mapped[str | None] = mapped_column(String(60))

    __table_args__ = (Index("ix_agents_organization_id_env_status", "organization_id", "env", "status"),)


class AgentStatus(TimestampMixin, Base):
    """A system agent paused (or resumed) by one organization in one mode; no row means active."""

    __tablename__ = "agent_statuses"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    env: Mapped[str] = mapped_column(String(8))
    agent_id: Mapped[str] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(16))  # active | paused

    __table_args__ = (UniqueConstraint("organization_id", "env", "agent_id", name="uq_agent_statuses_agent"),)


class CreditEntry(Base):
    """One charge of the append-only credits ledger: never updated, never deleted. Every credit
    figure (``/api/credits``, agent stats, an execution's ``credits_used``) is a sum over it."""

    __tablename__ = "credit_entries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    env: Mapped[str] = mapped_column(String(8))
    agent_id: Mapped[str] = mapped_column(String(60))
    execution_id: Mapped[str | None] = mapped_column(String(40))
    step_id: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(16))  # quick | standard | premium | expert
    credits: Mapped[int] = mapped_column(Integer)
    charged_at: Mapped[datetime] = mapped_column(default=clock.now)

    __table_args__ = (Index("ix_credit_entries_organization_id_env_charged_at", "organization_id", "env",
                            "charged_at"),)


class CreditAllocation(TimestampMixin, Base):
    """An organization's monthly credits (``errand set-credits``); no row means the default."""

    __tablename__ = "credit_allocations"

    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    monthly_credits: Mapped[int] = mapped_column(Integer)
