"""The bookings' inputs and views, as the core takes and reports them (dialects have their own
bodies), and the request fields every surface that books takes the same way: the reservations
dialect over REST and MCP, and automations' product actions (a customer, an ISO 8601 date-time,
camelCase or snake_case)."""

import datetime as dt
import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, field_validator, model_validator
from pydantic.alias_generators import to_camel

from errand.kit import limits
from errand.kit.inputs import check_spellings, text


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


# --- request fields (the reservations contract's rules) ---------------------------------------


def _matches(pattern: str, message: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(message)
        return value

    return AfterValidator(check)


Name = text(200, min_length=1, strip=True)
Email = Annotated[text(254, strip=True), _matches(r"[^@\s]+@[^@\s]+\.[^@\s]+", "must be an e-mail address")]
Phone = Annotated[text(40, strip=True), _matches(r"\+?[0-9 ()\-.]{4,}", "must be a phone number, e.g. +15551234567")]


# One party-size limit for REST, MCP and execution jobs (errand.kit.limits).
PartySize = limits.PartySize
# Ids Errand minted are short ASCII (the column holds 40).
TransactionId = text(60, min_length=1)
Reason = text(500, multiline=True)


def _iso_datetime(value: object) -> object:
    """Only an ISO 8601 date and time: a bare date or a number is too easy to misread."""
    if isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", value.strip()):
        raise ValueError("must be an ISO 8601 date and time, e.g. 2027-03-20T19:00:00Z")
    return value.strip()


DateTime = Annotated[dt.datetime, BeforeValidator(_iso_datetime)]


class CamelIn(BaseModel):
    """Input accepted in camelCase (as the contract shows) and snake_case (as agents often send),
    but never both spellings of one field in one object (:func:`errand.kit.inputs.check_spellings`)."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True,
                              hide_input_in_errors=True)  # what agents send may name a person

    _one_spelling = model_validator(mode="before")(check_spellings)


class CustomerIn(CamelIn):
    """The person the booking is for."""

    name: Name
    email: Email | None = None
    phone: Phone | None = None


class CustomerPatchIn(CamelIn):
    """Only the fields given change; email and phone may be cleared with null."""

    name: Name | None = None
    email: Email | None = None
    phone: Phone | None = None

    @field_validator("name")
    @classmethod
    def _name_cannot_be_cleared(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("cannot be null; leave it out to keep the current name")
        return value
