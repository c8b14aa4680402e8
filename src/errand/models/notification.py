"""The notification outbox (errand.notify), organizations' contacts for role recipients, and the
messages the sandbox's fake SMS and chat providers received (errand.sandbox.api.messages)."""

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from errand.kit import clock
from errand.kit.crypto import EncryptedJSON
from errand.models.base import Base, TimestampMixin


class Notification(TimestampMixin, Base):
    """One message to one recipient, written by an automation's ``notification`` step in the
    step's transaction and delivered by the runner (``errand.notify.deliver`` and a sweep).

    Unique per (execution, step, recipient index), so a re-run step never queues twice.
    ``next_attempt_at`` is when the row may next be tried; a sender claims the row by moving it
    past the send's time limit (a lease), so two processes never send it at once and a crash
    mid-send is retried once the lease lapses. ``recipient``, ``subject`` and ``body`` may carry
    personal data: encrypted at rest. ``last_error`` never does (codes and statuses only)."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("execution_id", "step_id", "recipient_index", name="uq_notifications_recipient"),
        Index("ix_notifications_due", "status", "next_attempt_at"),
        Index("ix_notifications_org", "organization_id", "env", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # ntf_…
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    env: Mapped[str] = mapped_column(String(8))
    execution_id: Mapped[str] = mapped_column(String(40))
    step_id: Mapped[str] = mapped_column(String(64))
    recipient_index: Mapped[int] = mapped_column(Integer)
    # email | sms | chat | webhook
    channel: Mapped[str] = mapped_column(String(16))
    # The recipient as the step named it when it is a role (role:traveler …), else None.
    recipient_role: Mapped[str | None] = mapped_column(String(20))
    # The resolved address: an e-mail address, an E.164 number, a chat channel, a URL.
    recipient: Mapped[str] = mapped_column(EncryptedJSON)
    subject: Mapped[str | None] = mapped_column(EncryptedJSON, nullable=True)
    body: Mapped[str] = mapped_column(EncryptedJSON)
    # pending | sent | failed
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=clock.now)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    provider_message_id: Mapped[str | None] = mapped_column(String(200))


class OrganizationContact(TimestampMixin, Base):
    """Who ``role:admins`` and ``role:finance`` reach in one organization (``errand set-contact``).
    The addresses are personal data: encrypted at rest."""

    __tablename__ = "organization_contacts"
    __table_args__ = (UniqueConstraint("organization_id", "role", name="uq_organization_contacts_role"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # oct_…
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    # admins | finance
    role: Mapped[str] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(EncryptedJSON, nullable=True)
    phone: Mapped[str | None] = mapped_column(EncryptedJSON, nullable=True)


class SandboxMessage(Base):
    """A message the sandbox's fake SMS provider or chat API accepted, kept so that tests and
    developers can read what was "sent". Phone numbers, channels and bodies are personal data:
    encrypted at rest."""

    __tablename__ = "sandbox_messages"
    __table_args__ = (Index("ix_sandbox_messages_kind", "kind", "received_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # SM… (sms) or a chat ts-based id
    # sms | chat
    kind: Mapped[str] = mapped_column(String(8))
    # The SMS account the message was sent from; the chat workspace's token is not kept.
    account: Mapped[str | None] = mapped_column(String(64))
    to: Mapped[str] = mapped_column(EncryptedJSON)
    sender: Mapped[str | None] = mapped_column(EncryptedJSON, nullable=True)
    body: Mapped[str] = mapped_column(EncryptedJSON)
    received_at: Mapped[datetime] = mapped_column(default=clock.now)
