"""Request and response bodies of the reservations dialect.

Requests accept camelCase (as the contract shows) and snake_case (as agents often send);
responses are camelCase.
"""

from typing import Any

from typing import Annotated

from pydantic import AliasChoices, ConfigDict, Field, StrictBool, StringConstraints, field_validator
from pydantic.alias_generators import to_camel

from errand.api.agentreserve import CamelIn, CustomerIn, CustomerPatchIn, DateTime, Name
from errand.bookings.schemas import BookingChanges, BookingCreate, Customer, CustomerPatch, TransactionView
from errand.guard.schemas import PolicyView
from errand.kit import clock

PartySize = Annotated[int, Field(ge=1, le=100, strict=True)]
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


_TXN_ID = Field(validation_alias=AliasChoices("transaction_id", "transactionId"), min_length=1, max_length=60)


class CancelRequest(CamelIn):
    transaction_id: str = _TXN_ID
    reason: Annotated[str, StringConstraints(max_length=500)] | None = None


class Updates(CamelIn):
    party_size: PartySize | None = None
    datetime: DateTime | None = None
    customer: CustomerPatchIn | None = None


class ModifyRequest(CamelIn):
    transaction_id: str = _TXN_ID
    updates: Updates

    def to_core(self) -> BookingChanges:
        customer = None
        if self.updates.customer is not None and self.updates.customer.model_fields_set:
            customer = CustomerPatch(**self.updates.customer.model_dump(exclude_unset=True))
        return BookingChanges(party_size=self.updates.party_size, starts_at=self.updates.datetime, customer=customer)


class PolicyIn(CamelIn):
    name: Name
    type: str
    config: dict[str, Any]
    enabled: StrictBool = True


class PolicyPatch(CamelIn):
    """A policy's type is fixed; name, config and enabled may change (null is not a value)."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True,
                              extra="forbid")
    name: Name | None = None
    config: dict[str, Any] | None = None
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
