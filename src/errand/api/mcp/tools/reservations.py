"""book_reservation, modify_reservation, cancel_reservation: the REST booking endpoints as tools.

Arguments come in the REST body's shape (snake_case or camelCase) or in the generic shape
of the contract's MCP example, ``{provider, service_type, customer, time_slot{start,end}}``,
which maps onto a restaurant table like this (README, API › MCP):

- ``provider``   the business that provides the service: the restaurant, by name;
- ``city``       its city, required as in REST (restaurant names are unique only per city);
- ``service_type`` what is booked there: ``table`` (also ``restaurant``, ``dining``) or left out;
- ``time_slot``  ``start`` is the seating time; ``end``, if given, must follow it (the
                 restaurant decides how long a table is kept);
- ``party_size`` guests, default 1 in the generic shape (it books for the one customer named).

Either way the tool builds the same core request as REST, so the same idempotency key
replays across REST and MCP.
"""

from collections.abc import Awaitable
from typing import Annotated, Any

from pydantic import Field

from errand.api.mcp import schemas
from errand.api.mcp.schemas import IdempotencyKey, TimeSlot, Transaction, Updates, either
from errand.api.mcp.tooldef import Call, ToolDef
from errand.bookings.schemas import CustomerIn, CustomerPatchIn, DateTime, Name, PartySize, Reason
from errand.bookings.schemas import TransactionId as TransactionIdText
from errand.bookings import service as bookings_service
from errand.bookings.schemas import BookingChanges, BookingCreate, Customer, CustomerPatch, TransactionView
from errand.kit import limits, names
from errand.kit.errors import DomainError, InvalidRequest
from errand.kit.inputs import text

TABLE_SERVICES = ("table", "restaurant", "dining")
GENERIC_RULE = (
    "In the generic shape, provider is the restaurant's name, city its city (required), service_type "
    "'table' (or left out), time_slot.start the seating time and party_size the number of guests (default 1)."
)

TransactionId = Annotated[TransactionIdText, either("transaction_id",
                                                    "The transactionId returned when the booking was made.")]
Key = Annotated[IdempotencyKey | None, either(
    "idempotency_key",
    "A unique string (e.g. a UUID) for this one intended action. Retrying with the same key and arguments "
    "returns the first result instead of acting twice; the same key with other arguments is "
    "IDEMPOTENCY_CONFLICT. Shared with REST's Idempotency-Key header.",
)]


def _invalid(issues: list[tuple[str, str]], generic: bool) -> InvalidRequest:
    summary = "; ".join(f"{field}: {message}" for field, message in issues)
    message = f"{summary}. {GENERIC_RULE}" if generic else f"{summary}."
    return InvalidRequest(message, details=[{"field": f, "message": m} for f, m in issues])


def _start(datetime: Any, time_slot: TimeSlot | None, issues: list[tuple[str, str]]) -> Any:
    if time_slot is None:
        return datetime
    if datetime is not None and datetime != time_slot.start:
        issues.append(("time_slot.start", "differs from datetime; give one of them"))
    end = time_slot.end
    if end is not None:
        if (end.tzinfo is None) != (time_slot.start.tzinfo is None):
            issues.append(("time_slot.end", "give an offset on both start and end, or on neither"))
        elif end <= time_slot.start:
            issues.append(("time_slot.end", "must be after time_slot.start"))
    return datetime or time_slot.start


def booking_create(*, restaurant_name: str | None, city: str | None, party_size: int | None, datetime: Any,
                   customer: CustomerIn, provider: str | None, service_type: str | None,
                   time_slot: TimeSlot | None) -> tuple[BookingCreate, bool]:
    """The core's booking request from either argument shape; ``True`` when the generic one was used."""
    generic = provider is not None or service_type is not None or time_slot is not None
    issues: list[tuple[str, str]] = []
    restaurant = restaurant_name
    if provider is not None:
        if restaurant_name is not None and not names.same(restaurant_name, provider):
            issues.append(("provider", "names the restaurant, and differs from restaurant_name; give one of them"))
        restaurant = restaurant or provider
    if service_type is not None and service_type.strip().casefold() not in TABLE_SERVICES:
        issues.append(("service_type", f"{service_type!r} is not a service Errand books; restaurants take 'table'"))
    start = _start(datetime, time_slot, issues)
    if restaurant is None:
        issues.append(("restaurant_name", "required (the generic shape's provider)"))
    if city is None:
        issues.append(("city", "required: restaurants are matched by name and city"))
    if start is None:
        issues.append(("datetime", "required (the generic shape's time_slot.start)"))
    if party_size is None:
        if generic:
            party_size = 1
        else:
            issues.append(("party_size", "required"))
    if issues:
        raise _invalid(issues, generic)
    data = BookingCreate(restaurant_name=restaurant, city=city, party_size=party_size, starts_at=start,
                         customer=Customer(**customer.model_dump()))
    return data, generic


def _in_generic_words(exc: DomainError) -> DomainError:
    """The core names the start ``datetime``; a caller of the generic shape sent ``time_slot.start``."""
    named = next((n for n in ("datetime", "updates.datetime") if exc.message.startswith(f"{n}:")), None)
    if not isinstance(exc, InvalidRequest) or named is None:
        return exc
    details = [{**d, "field": "time_slot.start"} if isinstance(d, dict) and d.get("field") == named else d
               for d in (exc.details or [])]
    return InvalidRequest("time_slot.start:" + exc.message.removeprefix(f"{named}:"), details=details)


def booking_changes(*, updates: Updates | None, party_size: int | None, datetime: Any,
                    time_slot: TimeSlot | None, customer: CustomerPatchIn | None) -> BookingChanges:
    """The core's change request from ``updates`` (REST) and/or top-level fields (generic shape)."""
    issues: list[tuple[str, str]] = []
    start = _start(datetime, time_slot, issues)
    given = updates or Updates()

    def merged(name: str, nested: Any, top: Any) -> Any:
        if nested is not None and top is not None and nested != top:
            issues.append((name, "given both in updates and at the top level, with different values; give one"))
        return nested if nested is not None else top

    new_party = merged("party_size", given.party_size, party_size)
    new_start = merged("datetime", given.datetime, start)
    new_customer = merged("customer", given.customer, customer)
    if issues:
        raise _invalid(issues, time_slot is not None)
    patch = None
    if new_customer is not None and new_customer.model_fields_set:
        patch = CustomerPatch(**new_customer.model_dump(exclude_unset=True))
    return BookingChanges(party_size=new_party, starts_at=new_start, customer=patch)


async def _transaction(booking: Awaitable[tuple[TransactionView, bool]], generic_words: bool) -> Transaction:
    """The transaction a booking call answers, with whether it was replayed; with ``generic_words``,
    a refusal that names the start ``datetime`` names ``time_slot.start`` instead."""
    try:
        txn, replayed = await booking
    except DomainError as exc:
        raise _in_generic_words(exc) if generic_words else exc from None
    return schemas.transaction(txn, replayed)


async def book_reservation(
    call: Call,
    customer: Annotated[CustomerIn, Field(description="Who the table is for: name, and email and/or phone "
                                                      "so the restaurant can reach them.")],
    restaurant_name: Annotated[Name | None, either(
        "restaurant_name", "The restaurant's name, exactly as search_availability shows it (venueName).")] = None,
    city: Annotated[Name | None, Field(description="The restaurant's city, e.g. 'San Francisco'.")] = None,
    party_size: Annotated[PartySize | None, either(
        "party_size", f"Number of guests (1-{limits.PARTY_SIZE_MAX}).")] = None,
    datetime: Annotated[DateTime | None, Field(description=(
        "Seating time, ISO 8601. With an offset (Z, +01:00) it is converted to the restaurant's local time; "
        "without one it is the restaurant's local time. Must be in the future and one of the restaurant's "
        "seating times."))] = None,
    provider: Annotated[Name | None, Field(description=(
        "Generic shape: the business that provides the service, i.e. the restaurant's name (use "
        "restaurant_name or provider, not both)."))] = None,
    service_type: Annotated[text(100) | None, either(
        "service_type", "Generic shape: what is booked; 'table' (or leave it out).")] = None,
    time_slot: Annotated[TimeSlot | None, either(
        "time_slot", "Generic shape: {start, end?}; start is the seating time (as datetime).")] = None,
    idempotency_key: Key = None,
) -> Transaction:
    """Book a restaurant table now; the answer is the booking itself (no polling).

    Use it when the user wants a specific restaurant at a specific time. To see which times
    are free first, call search_availability. For hotels, flights, event tickets, or when the
    user accepts another time or venue, use create_execution_job instead.

    Arguments, in either shape:
    - REST shape (preferred): restaurant_name, city, party_size, datetime, customer.
    - Generic shape: provider (the restaurant's name), city, service_type 'table' (optional),
      time_slot {start, end?}, customer, party_size (default 1).
    The restaurant is matched by name and city (case-insensitive, exact). Always send an
    idempotency_key, and reuse it only to retry this same booking.

    Result: the transaction. status 'confirmed': booked; keep transactionId to modify or
    cancel it. status 'requires_approval': an organization policy wants a person to approve;
    the table is held and the booking confirms itself once approved; tell the user and do not
    book again. replayed true: the stored answer to an earlier call with the same key.

    Errors (isError, JSON {"error": {code, message, details}}):
    - CAPACITY_EXCEEDED: no table for this party at that time; details.nearestAvailableTimes
      lists times that would fit (venue-local HH:MM, or a date and time when the day is
      closed). Offer them to the user and book again with the chosen one and a new key.
    - NOT_FOUND: no such restaurant in that city; check the spelling or search_availability.
    - INVALID_REQUEST: fix the fields named in details (a past time, a time between seatings,
      a missing field) and call again.
    - POLICY_VIOLATION: an organization policy forbids this booking; do not retry, tell the
      user why (the message names the policy).
    - RATE_LIMITED: wait retryAfterSeconds before calling again.
    - IDEMPOTENCY_CONFLICT: the key was used for a different request; use a new key.
    - PROVIDER_UNAVAILABLE / SERVICE_UNAVAILABLE: retry shortly with the same idempotency_key;
      it never books twice.
    """
    data, generic = booking_create(
        restaurant_name=restaurant_name, city=city, party_size=party_size, datetime=datetime,
        customer=customer, provider=provider, service_type=service_type, time_slot=time_slot,
    )
    booking = bookings_service.book(call.core, call.principal, data, idempotency_key)
    return await _transaction(booking, generic and time_slot is not None)


async def cancel_reservation(
    call: Call,
    transaction_id: TransactionId,
    reason: Annotated[Reason | None, Field(description="Why, in a few words (kept in the audit trail).")] = None,
    idempotency_key: Key = None,
) -> Transaction:
    """Cancel a restaurant booking by its transactionId and give the table back.

    Works on bookings that are confirmed, modified, or still awaiting approval (the
    approval is withdrawn). Cancelling cannot be undone: confirm with the user first.

    Result: the transaction with status 'cancelled' and reservation.cancelledAt.

    Errors (isError, JSON {"error": {code, message, details}}):
    - NOT_FOUND: no transaction with that id in your organization; check the id.
    - INVALID_STATE: it is already cancelled (or was denied or expired); nothing to do.
    - IDEMPOTENCY_CONFLICT: the key was used for a different request; use a new key.
    - PROVIDER_UNAVAILABLE / SERVICE_UNAVAILABLE: retry shortly with the same idempotency_key.
    """
    booking = bookings_service.cancel(call.core, call.principal, transaction_id, reason, idempotency_key)
    return await _transaction(booking, False)


async def modify_reservation(
    call: Call,
    transaction_id: TransactionId,
    updates: Annotated[Updates | None, Field(description=(
        "REST shape: {party_size?, datetime?, customer?}; only the fields given change."))] = None,
    party_size: Annotated[PartySize | None, either("party_size", "New number of guests.")] = None,
    datetime: Annotated[DateTime | None, Field(description="New seating time, ISO 8601 (as in "
                                                           "book_reservation).")] = None,
    time_slot: Annotated[TimeSlot | None, either(
        "time_slot", "Generic shape: {start, end?}; start is the new seating time.")] = None,
    customer: Annotated[CustomerPatchIn | None, Field(description=(
        "Customer fields to change; email and phone may be cleared with null."))] = None,
    idempotency_key: Key = None,
) -> Transaction:
    """Change the time, party size or customer details of a restaurant booking.

    Give the changes either inside `updates` (REST shape) or as top-level party_size,
    datetime or time_slot, and customer (generic shape). Capacity and the organization's
    policies are checked again for a new time or party size; the current booking stays as it
    is if the change cannot be made.

    Result: the transaction with status 'modified'. status 'requires_approval' with
    pendingChange: the change needs a person's approval; the booking is unchanged until
    then; tell the user.

    Errors (isError, JSON {"error": {code, message, details}}):
    - CAPACITY_EXCEEDED: the new time or party does not fit; details.nearestAvailableTimes
      lists times that would; offer them to the user.
    - NOT_FOUND: no transaction with that id in your organization.
    - INVALID_STATE: the booking is cancelled (or denied or expired) and cannot change.
    - INVALID_REQUEST: fix the fields named in details (e.g. no change given, a past time).
    - POLICY_VIOLATION: a policy forbids the change; tell the user.
    - RATE_LIMITED / IDEMPOTENCY_CONFLICT / PROVIDER_UNAVAILABLE: as in book_reservation.
    """
    changes = booking_changes(updates=updates, party_size=party_size, datetime=datetime,
                              time_slot=time_slot, customer=customer)
    booking = bookings_service.modify(call.core, call.principal, transaction_id, changes, idempotency_key)
    return await _transaction(booking, time_slot is not None)


TOOLS = [
    ToolDef(name="book_reservation", title="Book a restaurant table", handler=book_reservation, read_only=False,
            destructive=False, idempotent=False, open_world=True),
    ToolDef(name="cancel_reservation", title="Cancel a restaurant booking", handler=cancel_reservation,
            read_only=False, destructive=True, idempotent=True, open_world=True),
    ToolDef(name="modify_reservation", title="Change a restaurant booking", handler=modify_reservation,
            read_only=False, destructive=True, idempotent=True, open_world=True),
]
