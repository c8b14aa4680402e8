"""The reservations dialect's response bodies as documented models (OpenAPI only).

The routes build their answers with :mod:`errand.api.reservations.schemas`; these models describe
the same bytes for the OpenAPI document, and the schemathesis conformance test holds the two together.
"""

from typing import Any

from pydantic import BaseModel, Field


class Reservation(BaseModel):
    reservationId: str | None
    restaurantName: str
    city: str
    partySize: int
    datetime: str = Field(description="The seating time in UTC.")
    localDatetime: str = Field(description="The seating time at the venue, without offset.")
    timezone: str
    confirmation: str | None
    cancelledAt: str | None = Field(default=None, description="Only on cancelled transactions.")


class ApprovalRef(BaseModel):
    approvalId: str
    status: str
    expiresAt: str
    amountUsd: float
    actionDigest: str = Field(description="SHA-256 of the exact action an approval executes.")


class Transaction(BaseModel):
    """The contract's transaction, plus the amount, the provider and any approval it waits on."""

    transactionId: str
    status: str = Field(description="confirmed, modified, requires_approval, cancelled, denied or expired.")
    reservation: Reservation
    amountUsd: float
    providerId: str
    approval: ApprovalRef | None = None
    pendingChange: dict[str, Any] | None = None


class Customer(BaseModel):
    name: str
    email: str | None
    phone: str | None


class TransactionEvent(BaseModel):
    id: str
    type: str
    actor: str
    decision: str | None
    reason: str | None
    data: dict[str, Any]
    createdAt: str


class TransactionDetail(Transaction):
    scenario: str
    pricePerPersonUsd: float
    customer: Customer
    cancelReason: str | None
    createdAt: str
    updatedAt: str
    events: list[TransactionEvent]


class Policy(BaseModel):
    id: str
    name: str
    type: str
    config: dict[str, Any]
    enabled: bool
    createdAt: str
    updatedAt: str


class PolicyList(BaseModel):
    policies: list[Policy]


_NOT_NULL = {"PolicyPatch": ("name", "config", "enabled"), "CustomerPatchIn": ("name",)}
POLICY_TYPES = ["SPENDING_LIMIT", "TIME_RESTRICTION", "RATE_LIMIT", "APPROVAL_REQUIRED", "CUSTOM"]


def refine(schemas: dict[str, Any]) -> None:
    """Say in the request schemas what the request models check in validators: fields that may be
    left out but not sent as null, and the policy types."""
    for name, fields in _NOT_NULL.items():
        properties = schemas.get(name, {}).get("properties", {})
        for field in fields:
            branches = properties.get(field, {}).get("anyOf")
            if branches:
                kept = [b for b in branches if b.get("type") != "null"]
                properties[field].pop("anyOf")
                properties[field].update(kept[0] if len(kept) == 1 else {"anyOf": kept})
    policy_type = schemas.get("PolicyIn", {}).get("properties", {}).get("type")
    if policy_type is not None and policy_type.get("type") == "string" and "enum" not in policy_type:
        policy_type["enum"] = POLICY_TYPES
