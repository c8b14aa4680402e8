"""Request and response bodies of the reservations dialect.

Requests accept camelCase (as the contract shows) and snake_case (as agents often send);
responses are camelCase.
"""

from typing import Annotated, Any

from pydantic import AliasChoices, ConfigDict, Field, StrictBool, WithJsonSchema, field_validator
from pydantic.alias_generators import to_camel

from errand.bookings.schemas import (
    CamelIn, CustomerIn, CustomerPatchIn, DateTime, Name, PartySize, Reason, TransactionId,
)
from errand.bookings.schemas import BookingChanges, BookingCreate, Customer, CustomerPatch, TransactionView
from errand.guard.schemas import CONFIG_MODELS, POLICY_TYPES, PolicyView
from errand.kit import clock


class BookRequest(CamelIn):
    restaurant_name: Name
    city: Name
    party_size: PartySize
    datetime: DateTime
    customer: CustomerIn

    def to_core(self) -> BookingCreate:
        return BookingCreate(
            restaurant_name=self.restaurant_name, city=self.city, party_size=self.party_size,
            starts_at=self.datetime, customer=Customer(**self.customer.model_dump()),
        )


_TXN_ID = Field(validation_alias=AliasChoices("transaction_id", "transactionId"))


class CancelRequest(CamelIn):
    transaction_id: TransactionId = _TXN_ID
    reason: Reason | None = None


class Updates(CamelIn):
    party_size: PartySize | None = None
    datetime: DateTime | None = None
    customer: CustomerPatchIn | None = None


class ModifyRequest(CamelIn):
    transaction_id: TransactionId = _TXN_ID
    updates: Updates

    def to_core(self) -> BookingChanges:
        customer = None
        if self.updates.customer is not None and self.updates.customer.model_fields_set:
            customer = CustomerPatch(**self.updates.customer.model_dump(exclude_unset=True))
        return BookingChanges(party_size=self.updates.party_size, starts_at=self.updates.datetime, customer=customer)


# What each policy type's config holds, for the OpenAPI document and the README.
CONFIG_DOCS = {
    "SPENDING_LIMIT": "Deny a booking whose amount (price per person × party size, USD) exceeds "
                      "maxAmountUsd: {\"maxAmountUsd\": 200}.",
    "TIME_RESTRICTION": "Deny a booking outside allowedHours [start, end): the reservation's local hour at "
                        "the venue, start inclusive (0-23), end exclusive (1-24); start > end wraps past midnight: "
                        "{\"allowedHours\": [11, 22]}.",
    "RATE_LIMIT": "Refuse with 429 RATE_LIMITED beyond maxRequestsPerHour bookings by the organization over a "
                  "moving hour (1-1000000): {\"maxRequestsPerHour\": 50}.",
    "APPROVAL_REQUIRED": "Ask a person to approve a booking whose amount is above threshold USD, or every "
                         "booking without a threshold: {\"threshold\": 500}.",
    "CUSTOM": "A CEL rule over `request`; when it is true, `action` (deny, the default, or "
              "requires_approval) applies, with `message`: {\"rule\": \"request.partySize > 8\", "
              "\"action\": \"requires_approval\"}.",
}
_CONFIG_SCHEMA = {
    "description": "The policy type's settings; each type takes its own object (numbers must be finite JSON "
                   "numbers).",
    "anyOf": [{**CONFIG_MODELS[t].model_json_schema(), "title": t, "description": CONFIG_DOCS[t]}
              for t in POLICY_TYPES],
}
PolicyConfig = Annotated[dict[str, Any], WithJsonSchema(_CONFIG_SCHEMA)]


def _type_decides_config(schema: dict[str, Any]) -> None:
    """The document ties each ``type`` to its config object, as :func:`errand.guard.policies.validate_config` does."""
    schema["oneOf"] = [{"properties": {"type": {"const": t}, "config": {**CONFIG_MODELS[t].model_json_schema(),
                                                                        "title": t}}}
                       for t in POLICY_TYPES]


class PolicyIn(CamelIn):
    """A new policy. ``name`` defaults to the type; ``config`` depends on ``type`` (see each variant)."""

    model_config = ConfigDict(json_schema_extra=_type_decides_config)

    name: Name | None = None
    type: Annotated[str, Field(max_length=32, json_schema_extra={"enum": list(POLICY_TYPES)})]
    config: PolicyConfig
    enabled: StrictBool = True


class PolicyPatch(CamelIn):
    """A policy's type is fixed; name, config and enabled may change (null is not a value)."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True,
                              extra="forbid")
    name: Name | None = None
    config: PolicyConfig | None = None
    enabled: StrictBool | None = None

    @field_validator("name", "config", "enabled")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep it")
        return value


def _reservation(txn: TransactionView) -> dict[str, Any]:
    return {
        "reservationId": txn.reservation_id,
        "restaurantName": txn.restaurant_name,
        "city": txn.city,
        "partySize": txn.party_size,
        "datetime": clock.iso(txn.starts_at),
        "localDatetime": txn.local_start,
        "timezone": txn.timezone,
        "confirmation": txn.confirmation,
    }


def transaction_body(txn: TransactionView) -> dict[str, Any]:
    """The contract's response, plus what a careful client needs: amount, provider, approval."""
    reservation = _reservation(txn)
    if txn.status == "cancelled":
        reservation["cancelledAt"] = clock.iso(txn.cancelled_at)
    body: dict[str, Any] = {
        "transactionId": txn.id,
        "status": txn.status,
        "reservation": reservation,
        "amountUsd": txn.amount_usd,
        "providerId": txn.provider_id,
    }
    if txn.approval is not None:
        body["approval"] = {
            "approvalId": txn.approval.id, "status": txn.approval.status,
            "expiresAt": clock.iso(txn.approval.expires_at), "amountUsd": txn.approval.amount_usd,
            "actionDigest": txn.approval.action_digest,
        }
    if txn.pending_change is not None:
        body["pendingChange"] = txn.pending_change
    return body


def transaction_detail_body(detail: Any) -> dict[str, Any]:
    body = transaction_body(detail)
    body.update(
        scenario=detail.scenario,
        pricePerPersonUsd=detail.price_per_person_usd,
        customer=detail.customer.model_dump(),
        cancelReason=detail.cancel_reason,
        createdAt=clock.iso(detail.created_at),
        updatedAt=clock.iso(detail.updated_at),
        events=[
            {"id": e.id, "type": e.type, "actor": e.actor, "decision": e.decision, "reason": e.reason,
             "data": e.data, "createdAt": clock.iso(e.created_at)}
            for e in detail.events
        ],
    )
    return body


def policy_body(policy: PolicyView) -> dict[str, Any]:
    return {
        "id": policy.id, "name": policy.name, "type": policy.type, "config": policy.config,
        "enabled": policy.enabled, "createdAt": clock.iso(policy.created_at),
        "updatedAt": clock.iso(policy.updated_at),
    }
