"""What a provider is: a small adapter, behind a Protocol, to a system that holds inventory.

Errand owns no inventory. A provider adapter talks to the system that does (the sandbox
marketplace over HTTP, or a real restaurant system) and reports outcomes in the core's
words. Its errors (:mod:`errand.providers.errors`, re-exported here) split the way a
fallback chain needs them: :class:`NoAvailability` (a logical "no": capacity, closed, too
large a party) stops the chain for that venue and carries the nearest bookable times when
the provider knows them; :class:`ProviderUnavailable` (timeout, 5xx, connection refused) is
technical: the outcome is unknown, the caller may retry with the same idempotency key, and
a chain may move on; :class:`ProviderNotFound` names a reservation or hold the provider does
not know.

Every call that changes something carries an idempotency key, and providers must honour it:
the same key and body returns the first result instead of booking twice.
"""

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict


class Venue(BaseModel):
    id: str
    name: str
    city: str
    timezone: str
    price_per_person_usd: Decimal | None = None
    max_party_size: int | None = None
    slot_minutes: int | None = None


class Guest(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)  # personal data never reaches a log line

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


class ProviderAdapter:
    """What every provider adapter says about itself: the attributes the provider Protocols read.

    A subclass sets them as class attributes (plain annotations here, not ClassVar, so that
    subclasses satisfy the Protocols): ``id`` (what ``allowedProviders`` and metrics name),
    ``display_name``, the ``scenarios`` it sells, ``kind`` (``"api"`` or ``"browser"``),
    ``sandbox``, and ``priority``, the order a fallback chain tries providers in when nothing
    better is known (lowest first).
    """

    id: str
    display_name: str
    scenarios: tuple[str, ...]
    priority: int
    kind: str
    sandbox: bool = True


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

    async def find_venue(self, name: str, city: str) -> Venue | None:
        """The restaurant of that name in that city, matched as :func:`errand.kit.names.normalise` compares.

        A provider that knows none raises :class:`VenueUnknown` with its nearest names (or
        returns None when it has no suggestions to give).
        """
        ...

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


_SEATS_PARTIES: dict[type, bool] = {}


def seats_parties(provider: object) -> bool:
    """Whether ``provider`` takes synchronous restaurant reservations (:class:`RestaurantProvider`),
    decided once per provider class: a runtime-checkable Protocol's ``isinstance`` inspects every
    member on each call, a measurable share of a booking's CPU (``bench/book.py``)."""
    kind = type(provider)
    if kind not in _SEATS_PARTIES:
        _SEATS_PARTIES[kind] = isinstance(provider, RestaurantProvider)
    return _SEATS_PARTIES[kind]


# --- Execution jobs: one interface for every scenario ------------------------------------


class SearchQuery(BaseModel):
    """What a job asks a provider for, in scenario-neutral words.

    ``venue`` is the restaurant, hotel or event name (None for flights, which use
    ``origin``/``dest``); ``date`` and ``time`` are venue-local; ``end_date`` is a hotel's
    checkout; ``quantity`` is covers, adults (one room), passengers or tickets.
    ``preferences`` carries the scenario's optional fields as the contract names them
    (cuisine, neighborhood, star_rating, room_preference, cabin_class, targetAirline,
    targetFlightNumber, targetDepartureTime, seat_type).
    """

    scenario: str
    city: str | None = None
    venue: str | None = None
    origin: str | None = None
    dest: str | None = None
    date: str
    time: str | None = None
    end_date: str | None = None
    quantity: int
    preferences: dict[str, Any] = {}


class Offer(BaseModel):
    """One bookable thing at a provider: a slot, a room for the stay, a fare, a seat type."""

    provider_id: str
    scenario: str
    venue_id: str
    venue_name: str
    city: str
    unit: str  # "table", a room type code, a cabin, a seat type code
    unit_name: str
    start: str  # venue-local "YYYY-MM-DDTHH:MM"
    end: str | None = None  # hotels: checkout date
    quantity: int
    unit_price_usd: Decimal
    total_price_usd: Decimal
    remaining: int
    attributes: dict[str, Any] = {}


class Checkout(BaseModel):
    """Where a provider stopped: at the payment page (``paused_payment``) or booked (``completed``)."""

    status: str  # paused_payment | completed
    hold_id: str
    handoff_url: str | None = None
    confirmation: str | None = None
    expires_at: datetime | None = None


class VenueFacts(BaseModel):
    """What a provider says about the venue a query names: what a venue switch compares alternatives with.

    ``attributes`` carries the venue's kind as the offers' attributes name it (restaurants:
    cuisine, neighborhood; hotels: star_rating, neighborhood; events: category);
    ``price_usd`` is its typical unit price (a restaurant's price per person, a hotel's
    cheapest nightly rate, an event's cheapest ticket), None when unknown.
    """

    provider_id: str
    venue_id: str
    venue_name: str
    city: str
    attributes: dict[str, Any] = {}
    price_usd: Decimal | None = None


@runtime_checkable
class JobProvider(Protocol):
    """A provider the job executor can drive, for any scenario it lists.

    ``search`` returns the offers for the requested venue (or route) on the requested
    date, every time of day and unit it has, so the executor can pick the exact one or
    adjust; it raises VenueNotServed, NeedsLogin, CaptchaRequired or ProviderUnavailable.
    A venue the provider knows under no spelling is :class:`VenueUnknown` (a VenueNotServed).
    ``alternatives`` returns offers at similar venues in the same city (for a venue switch).
    ``checkout`` holds the offer and stops at payment, or completes it where the provider
    has no card gate; the same idempotency key returns the same hold.

    Optional, read with ``getattr``: ``describe(query) -> VenueFacts`` (the named venue's
    kind and price, raising VenueNotServed / VenueUnknown), which a venue switch compares
    alternatives with; and ``stops_at_payment: bool``, True when every checkout stops at a
    payment page, so that a switched venue is never booked without the end user paying
    (absent means it may complete).
    """

    id: str
    display_name: str
    scenarios: tuple[str, ...]
    kind: str
    sandbox: bool

    async def search(self, query: SearchQuery) -> list[Offer]: ...

    async def alternatives(self, query: SearchQuery) -> list[Offer]: ...

    async def checkout(self, offer: Offer, traveler: dict[str, Any], *, idempotency_key: str) -> Checkout: ...


# --- Venue search: what a provider sells, before any date is known ------------------------


class VenueQuery(BaseModel):
    """Which venues to list: one scenario (restaurant, hotel or activity) in one city or all.

    Filters are narrowing hints a provider may apply itself to list less; the caller
    (:mod:`errand.venues.service`) filters again on what comes back, so a provider that
    ignores them stays correct, only slower.
    """

    scenario: str
    city: str | None = None


class VenueListing(BaseModel):
    """One venue as one provider sells it: what an agent needs to choose it and then search it.

    ``id`` is the venue's id at that provider; ``name`` and ``city`` are what
    ``search_availability`` and job requests take. Restaurants give ``cuisine``,
    ``price_per_person_usd`` and ``max_party_size``; hotels ``star_rating``; events
    ``category`` and ``place`` (the theatre, arena or hall). ``price_from_usd`` is the lowest
    unit price (per person, per night or per ticket, as ``price_unit`` says) and
    ``price_band`` its band from ``$`` to ``$$$$``, when the provider knows them.
    """

    provider_id: str
    scenario: str
    id: str
    name: str
    city: str
    timezone: str | None = None
    neighborhood: str | None = None
    cuisine: str | None = None
    category: str | None = None
    place: str | None = None
    star_rating: int | None = None
    price_band: str | None = None
    price_from_usd: Decimal | None = None
    price_unit: str | None = None  # "person", "night", "ticket"
    price_per_person_usd: Decimal | None = None
    max_party_size: int | None = None


@runtime_checkable
class VenueDirectory(Protocol):
    """Optional capability: a provider that can list the venues it sells.

    ``search_venues`` returns every venue of ``query.scenario`` (in ``query.city`` when one is
    given) that this provider sells, in any order; ``[]`` when it sells none. It raises
    ProviderUnavailable when the provider cannot be reached. A provider without this method
    is simply not asked: venue search (:func:`errand.venues.service.find_venues`) lists what
    the others sell.
    """

    id: str
    scenarios: tuple[str, ...]
    sandbox: bool

    async def search_venues(self, query: VenueQuery) -> list[VenueListing]: ...


# --- What a provider shows of its work ---------------------------------------------------

SnapshotSink = Callable[[str, str, bytes], Awaitable[None]]
"""``await sink(step, url, png)``: keep one screenshot of a provider's work on a job.

The job executor sets :data:`snapshot_sink` for the job it runs; a provider that drives a
browser saves a PNG after each page load or action through it. Outside a job (tests,
benchmarks) there is no sink and nothing is kept. A sink that fails must not fail the job.
"""

snapshot_sink: ContextVar[SnapshotSink | None] = ContextVar("errand_snapshot_sink", default=None)
