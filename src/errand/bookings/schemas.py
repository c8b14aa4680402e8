from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class Customer(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)  # personal data never reaches a log line

    name: str
    email: str | None = None
    phone: str | None = None


class CustomerPatch(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)  # personal data never reaches a log line

    name: str | None = None
    email: str | None = None
    phone: str | None = None


class BookingCreate(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)  # personal data never reaches a log line

    restaurant_name: str
    city: str
    party_size: int
    # Aware: converted to the venue's local time. Naive: already the venue's local time.
    starts_at: datetime
    customer: Customer


class BookingChanges(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)  # personal data never reaches a log line

    party_size: int | None = None
    starts_at: datetime | None = None
    customer: CustomerPatch | None = None


class ApprovalSummary(BaseModel):
    id: str
    status: str
    expires_at: datetime
    amount_usd: float
    action_digest: str


class TransactionView(BaseModel):
    """A transaction as the core reports it; dialects render it in their own words."""

    model_config = ConfigDict(hide_input_in_errors=True)  # personal data never reaches a log line

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
