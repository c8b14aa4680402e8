"""What a provider is: a small adapter, behind a Protocol, to a system that holds inventory.

Errand owns no inventory. A provider adapter talks to the system that does (the sandbox
marketplace over HTTP, or a real restaurant system) and reports outcomes in the core's
words. Errors split the way a fallback chain needs them:

- :class:`NoAvailability` (a logical "no": capacity, closed, too large a party) stops the
  chain for that venue and carries the nearest bookable times when the provider knows them;
- :class:`ProviderUnavailable` (timeout, 5xx, connection refused) is technical: the outcome
  is unknown, the caller may retry with the same idempotency key, and a chain may move on;
- :class:`ProviderNotFound` names a reservation or hold the provider does not know.

Every call that changes something carries an idempotency key, and providers must honour it:
the same key and body returns the first result instead of booking twice.
"""

from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from pydantic import BaseModel

from errand.kit.errors import Conflict, NotFound, Unavailable


class Venue(BaseModel):
    id: str
    name: str
    city: str
    timezone: str
    price_per_person_usd: Decimal | None = None
    max_party_size: int | None = None
    slot_minutes: int | None = None


class Guest(BaseModel):
    name: str
    email: str | None = None
    phone: str | None = None


class Hold(BaseModel):
    hold_id: str
    expires_at: datetime


class Reservation(BaseModel):
    reservation_id: str
    confirmation: str | None = None
    status: str
    start: str  # venue-local "YYYY-MM-DDTHH:MM"
    party_size: int


class NoAvailability(Conflict):
    def __init__(self, message: str, nearest: list[str] | None = None) -> None:
        super().__init__("capacity_exceeded", message, details={"nearestAvailableTimes": nearest or []})
        self.nearest = nearest or []


class ProviderUnavailable(Unavailable):
    def __init__(self, provider_id: str, message: str, retry_after: int | None = None) -> None:
        super().__init__("provider_unavailable", f"{provider_id}: {message}", retry_after=retry_after)
        self.provider_id = provider_id


class ProviderNotFound(NotFound):
    def __init__(self, message: str) -> None:
        super().__init__("not_found", message)


@runtime_checkable
class RestaurantProvider(Protocol):
    """A provider that seats parties at restaurant slot starts.

    Times are venue-local naive datetimes: the provider's inventory is kept in local time.
    """

    id: str
    display_name: str
    scenarios: tuple[str, ...]
    kind: str  # "api" or "browser"
    sandbox: bool

    async def find_venue(self, name: str, city: str) -> Venue | None: ...

    async def book(
        self, venue_id: str, start: datetime, party_size: int, guest: Guest, *, idempotency_key: str
    ) -> Reservation: ...

    async def hold(
        self, venue_id: str, start: datetime, party_size: int, guest: Guest, *,
        ttl_seconds: int, idempotency_key: str,
    ) -> Hold: ...

    async def confirm_hold(self, hold_id: str, *, idempotency_key: str) -> Reservation: ...

    async def release_hold(self, hold_id: str) -> None: ...

    async def modify(
        self, reservation_id: str, *, start: datetime, party_size: int, guest: Guest, idempotency_key: str
    ) -> Reservation: ...

    async def cancel(self, reservation_id: str, *, idempotency_key: str) -> None: ...
