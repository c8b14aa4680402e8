"""One ORM file per table; importing this package registers them all on ``Base.metadata``."""

from errand.models.api_key import ApiKey
from errand.models.approval import Approval
from errand.models.audit_event import AuditEvent
from errand.models.automation import Agent, AgentStatus, CreditAllocation, CreditEntry
from errand.models.base import Base, get_owned
from errand.models.execution import AutomationEvent, Execution, ExecutionStep
from errand.models.booking_profile import BookingProfile
from errand.models.idempotency_record import IdempotencyRecord
from errand.models.job import Job
from errand.models.notification import Notification, OrganizationContact, SandboxMessage
from errand.models.organization import Organization
from errand.models.outbox_event import OutboxEvent
from errand.models.policy import Policy
from errand.models.provider_event import ProviderEvent
from errand.models.provider_outcome import ProviderOutcome
from errand.models.sandbox_booking import SandboxBooking, SandboxSlot
from errand.models.sandbox_web_session import SandboxWebSession
from errand.models.snapshot import JobSnapshot
from errand.models.transaction import Transaction
from errand.models.webhook import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "Agent", "AgentStatus", "ApiKey", "Approval", "AuditEvent", "AutomationEvent", "Execution", "ExecutionStep", "Base", "BookingProfile", "CreditAllocation",
    "CreditEntry", "IdempotencyRecord", "Job", "JobSnapshot", "Notification", "OrganizationContact", "Organization", "OutboxEvent", "Policy",
    "ProviderEvent", "ProviderOutcome", "SandboxBooking", "SandboxMessage", "SandboxSlot",
    "SandboxWebSession", "Transaction", "WebhookAttempt", "WebhookDelivery", "WebhookEndpoint", "get_owned",
]
