"""The bookings' inputs and views, as the core takes and reports them (dialects have their own bodies)."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class _Private(BaseModel):
    """A model that may hold a person's name, e-mail or phone: never echoed in a validation error."""

    model_config = ConfigDict(hide_input_in_errors=True)  # personal data never reaches a log line


class Customer(_Private):
    name: str
    email: str | None = None
    phone: str | None = None


class CustomerPatch(_Private):
    name: str | None = None
    email: str | None = None
    phone: str | None = None


class BookingCreate(_Private):
    restaurant_name: str
    city: str
    party_size: int
    # Aware: converted to the venue's local time. Naive: already the venue's local time.
    starts_at: datetime
    customer: Customer


class BookingChanges(_Private):
    party_size: int | None = None
    starts_at: datetime | None = None
    customer: CustomerPatch | None = None


class ApprovalSummary(BaseModel):
    id: str
    status: str
    expires_at: datetime
    amount_usd: float
    action_digest: str


class TransactionView(_Private):
    """A transaction as the core reports it; dialects render it in their own words."""

    id: str
    status: str
    scenario: str
    provider_id: str
    restaurant_name: str
    city: str
    timezone: str
    party_size: int
    starts_at: datetime
    local_start: str
    price_per_person_usd: float
    amount_usd: float
    reservation_id: str | None
    confirmation: str | None
    customer: Customer
    cancelled_at: datetime | None
    cancel_reason: str | None
    approval: ApprovalSummary | None = None
    pending_change: dict[str, Any] | None = None
    created_at: datetime
    updated_at: datetime


class AuditEventView(BaseModel):
    id: str
    type: str
    actor: str
    decision: str | None
    reason: str | None
    data: dict[str, Any]
    created_at: datetime


class TransactionDetail(TransactionView):
    events: list[AuditEventView]
