"""What the notification outbox exchanges with its callers: channels, roles, statuses, a row's view."""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Channel = Literal["email", "sms", "chat", "webhook"]
CHANNELS: tuple[str, ...] = ("email", "sms", "chat", "webhook")
# Roles an organization sets contacts for (errand set-contact); role:traveler comes from the job.
CONTACT_ROLES: tuple[str, ...] = ("admins", "finance")
ROLE_PREFIX = "role:"
Status = Literal["pending", "sent", "failed"]
# The task delivering one notification (args: notification_id).
DELIVER_TASK = "errand.notify.deliver"


@dataclass(frozen=True)
class NotificationView:
    """A notification as its owner may read it (the recipient decrypted)."""

    id: str
    execution_id: str
    step_id: str
    channel: str
    recipient: str
    recipient_role: str | None
    subject: str | None
    body: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    sent_at: datetime | None
    provider_message_id: str | None


@dataclass(frozen=True)
class Contact:
    """An organization's contact for one role: who role:admins or role:finance reaches."""

    organization_id: str
    role: str
    email: str | None
    phone: str | None
