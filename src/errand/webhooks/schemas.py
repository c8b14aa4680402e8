"""What the webhooks service exchanges with its callers: the request bodies' models, the views of
endpoints and deliveries, and the constants of the delivery rules (docs/webhooks.md)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from errand.kit import egress, inputs
from errand.outbox.schemas import EVENT_TYPES

ALL_EVENTS = "*"
SUBSCRIBABLE = (*EVENT_TYPES, ALL_EVENTS)
MAX_EVENTS = len(SUBSCRIBABLE)
MAX_DESCRIPTION = 500
# Deliveries are pending until an attempt succeeds (succeeded) or the last one fails (failed).
DELIVERY_STATUSES = ("pending", "succeeded", "failed")
# Why an endpoint went disabled: its URL answered 410 Gone, or N deliveries in a row failed.
DISABLED_REASONS = ("gone", "failing")
# How long the previous signing secret keeps signing after a rotation (issue 14).
ROTATION_OVERLAP_HOURS = 24
# The delivery request: 10 s timeout, at most this much of the response read, this much kept.
TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 64 * 1024
EXCERPT_CHARS = 200


class WebhookCreate(BaseModel):
    """``POST /api/v1/webhooks``: where to send, which event types (names or ``*``), a note."""

    model_config = ConfigDict(extra="forbid")

    url: inputs.text(egress.MAX_URL_LENGTH, min_length=1)  # type: ignore[valid-type]
    events: list[inputs.text(60, min_length=1)] = Field(min_length=1, max_length=MAX_EVENTS)  # type: ignore[valid-type]
    description: inputs.text(MAX_DESCRIPTION) | None = None  # type: ignore[valid-type]


class WebhookUpdate(BaseModel):
    """``PATCH /api/v1/webhooks/{id}``: any of the four; ``enabled: true`` re-enables a disabled endpoint."""

    model_config = ConfigDict(extra="forbid")

    url: inputs.text(egress.MAX_URL_LENGTH, min_length=1) | None = None  # type: ignore[valid-type]
    events: list[inputs.text(60, min_length=1)] | None = Field(  # type: ignore[valid-type]
        default=None, min_length=1, max_length=MAX_EVENTS)
    description: inputs.text(MAX_DESCRIPTION) | None = None  # type: ignore[valid-type]
    enabled: inputs.StrictBool | None = None


@dataclass(frozen=True)
class EndpointView:
    id: str
    url: str
    events: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None
    consecutive_failures: int
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    secret: str | None = None
    """Only in the answer to a creation or a rotation: the signing secret, shown once."""


@dataclass(frozen=True)
class AttemptView:
    number: int
    status_code: int | None
    duration_ms: int
    error: str | None
    response_excerpt: str | None
    manual: bool
    attempted_at: datetime


@dataclass(frozen=True)
class DeliveryView:
    id: str
    endpoint_id: str
    webhook_id: str
    event_id: int
    event_type: str
    job_id: str | None
    status: str
    attempt_count: int
    next_attempt_at: datetime | None
    created_at: datetime
    completed_at: datetime | None
    attempts: list[AttemptView]


@dataclass(frozen=True)
class Outgoing:
    """One message as it leaves: where, the body's bytes and the headers (signed)."""

    url: str
    body: bytes
    headers: dict[str, str]


def message_body(event_type: str, occurred_at: str, data: dict[str, Any]) -> dict[str, Any]:
    """The delivered JSON: ``{"type", "timestamp", "data"}`` (``data`` carries ``event_id``)."""
    return {"type": event_type, "timestamp": occurred_at, "data": data}
