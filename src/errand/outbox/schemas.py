"""Errand's own events as consumers see them, and their vocabulary.

The event types are ../shared/spec/RESOLUTIONS.md's "Errand's own event types": one
vocabulary for automations' triggers, outbound webhooks and the dashboard.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

SOURCE_PRODUCT = "errand"

JOB_EVENTS = (
    "job.created", "job.awaiting_approval", "job.paused_payment", "job.payment_completed", "job.hold_expired",
    "job.completed", "job.failed", "job.cancelled",
)
TRANSACTION_EVENTS = ("transaction.confirmed", "transaction.modified", "transaction.cancelled")
APPROVAL_EVENTS = ("approval.requested", "approval.decided", "approval.expired")
# Declared now, emitted by automations once they exist.
EXECUTION_EVENTS = ("execution.completed", "execution.failed")
EVENT_TYPES = JOB_EVENTS + TRANSACTION_EVENTS + APPROVAL_EVENTS + EXECUTION_EVENTS

# The terminal failures a ``job.failed`` payload names as its ``reason``.
JOB_FAILURES = ("no_availability", "needs_login", "captcha", "error")

# Payload keys that would carry personal data; :func:`errand.outbox.service.record` refuses them.
PERSONAL_KEYS = frozenset({
    "customer", "guest", "traveler", "profile", "name", "first_name", "last_name", "email", "phone", "notes",
    "note", "special_requests", "passport_number", "dob",
})


@dataclass(frozen=True)
class Event:
    """One recorded event: ``id`` orders them (it grows with every event recorded);
    ``organization_id`` and ``env`` (test | live) say whose it is, and a consumer acts only
    within them; ``payload`` holds ids, statuses, amounts and venue names (snake_case keys)."""

    id: int
    organization_id: str
    env: str
    event_type: str
    subject_type: str
    subject_id: str
    payload: dict[str, Any]
    occurred_at: datetime
    source_product: str = SOURCE_PRODUCT
    execution_id: str | None = None
    """The automation execution whose step made the change (:func:`errand.outbox.service.acting_for`), if any."""
