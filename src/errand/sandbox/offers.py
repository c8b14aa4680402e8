"""The job API in scenario-neutral words: what a search asks, what it offers, what a checkout picks.

Each scenario (restaurants, hotels, flights, events) is a :class:`Scenario`: it resolves
a query to venues, lists their offers, ranks similar venues for a venue switch, and turns
a picked offer into an inventory :class:`~errand.sandbox.inventory.Claim`. Everything
else (obstacles, idempotency, holds, payment) is the same for all four and lives in
:mod:`errand.sandbox.service`.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from errand.kit.names import same
from errand.sandbox.catalog import Provider
from errand.sandbox.errors import Unbookable, UnknownVenue
from errand.sandbox.inventory import Claim
from errand.sandbox.world import WEEKDAY_NAMES, suggest

U = TypeVar("U")  # a venue's unit: a room type, a cabin, a seat type


@dataclass(frozen=True)
class Query:
    """A search: ``day``/``at`` venue-local, ``end_day`` a hotel's checkout, ``quantity``
    covers, adults (one room), passengers or tickets; ``preferences`` as the contract names them."""

    scenario: str
    day: date
    quantity: int
    city: str | None = None
    venue: str | None = None
    origin: str | None = None
    dest: str | None = None
    at: time | None = None
    end_day: date | None = None
    preferences: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Pick:
    """The offer a checkout asks for, as the search returned it."""

    venue_id: str
    unit: str
    day: date
    at: time | None
    end_day: date | None
    quantity: int


@dataclass(frozen=True)
class Offer:
    venue_id: str
    venue_name: str
    city: str
    unit: str
    unit_name: str
    start: datetime
    end: date | None
    quantity: int
    unit_price_usd: int
    total_price_usd: int
    remaining: int
    attributes: dict[str, Any] = field(default_factory=dict)

    def to_json(self, provider_id: str, scenario: str) -> dict[str, Any]:
        return {
            "provider_id": provider_id, "scenario": scenario, "venue_id": self.venue_id,
            "venue_name": self.venue_name, "city": self.city, "unit": self.unit, "unit_name": self.unit_name,
            "start": self.start.isoformat(timespec="minutes"), "end": self.end.isoformat() if self.end else None,
            "quantity": self.quantity, "unit_price_usd": self.unit_price_usd,
            "total_price_usd": self.total_price_usd, "remaining": self.remaining, "attributes": self.attributes,
        }


@dataclass(frozen=True)
class Target:
    """A search resolved: the venues to list, the keys their obstacles are filed under, a label for messages."""

    venues: tuple[Any, ...]
    keys: tuple[str, ...]
    label: str


class Scenario(Protocol):
    """What differs between scenarios; implementations subclass it to inherit the defaults."""

    name: str
    # Traveler fields a checkout must carry besides a name (flights: passport details).
    traveler_fields: tuple[str, ...] = ()

    def target(self, provider: Provider, query: Query) -> Target:
        """Resolve the query to venues; raise ``NotServed`` when there are none."""
        ...

    async def offers(self, session: AsyncSession, venue: Any, query: Query) -> list[Offer]:
        """The offers at one venue that fit the query now."""
        ...

    def similar(self, query: Query) -> list[tuple[Any, tuple[str, ...]]]:
        """Other venues in the query's city, most similar first, with their obstacle keys."""
        return []

    def facts(self, venue: Any) -> dict[str, Any] | None:
        """The venue's kind and typical price, as a venue switch compares them (None: nothing to say)."""
        return None

    def keeps(self, offer: Offer, query: Query) -> bool:
        """Whether an offer at a similar venue answers the query (restaurants: the same time)."""
        return True

    def lookup(self, venue_id: str) -> tuple[Any, tuple[str, ...], str] | None:
        """A venue by id, with its obstacle keys and a label; None if it is not of this scenario."""
        ...

    async def claim(self, session: AsyncSession, venue: Any, pick: Pick) -> Claim:
        """What booking ``pick`` takes; raise :class:`Unbookable` when the venue's rules refuse it."""
        ...

    async def sold_out(self, session: AsyncSession, venue: Any, claim: Claim, slot: str) -> Unbookable:
        """The error for a claim that found ``slot`` full."""
        ...

    def names(self, venue_id: str, unit: str) -> tuple[str, str]:
        """The venue's and the unit's names, for the checkout page."""
        ...


def unknown(provider: Provider, kind: str, query: Query, venues: Iterable[Any]) -> UnknownVenue:
    """The error for a query whose venue name matches no ``kind`` (restaurant, hotel, event) at all.

    It suggests the nearest names (:func:`errand.kit.names.nearest`) among the venues this
    provider sells in the query's city, or in every city when the city itself is unknown
    (:func:`errand.sandbox.world.suggest`).
    """
    suggestions = suggest([v for v in venues if provider.serves((v.id,))], query.venue or "", query.city)
    where = f" in {query.city}" if query.city else ""
    hint = f" Did you mean {' or '.join(suggestions)}?" if suggestions else ""
    return UnknownVenue(f"There is no {kind} named {query.venue!r}{where}.{hint}", suggestions)


def dated_claim(
    scenario: str, pick: Pick, *, venue_id: str, label: str, runs: bool, verb: str, scheduled: time,
    start: datetime, now: datetime, past: str, unit: str, capacity: int, unit_price_usd: int,
) -> Claim:
    """What ``pick`` takes of one dated run (a flight's departure, an event's performance).

    ``runs`` says whether it runs on the pick's weekday (``verb``: "fly", "play"), ``start`` is
    that day's start, ``now`` the local time there. Raises :class:`Unbookable` when it does not
    run that day, the pick names another time than ``scheduled``, or it has already ``past``.
    """
    if not runs:
        raise Unbookable(f"{label} does not {verb} on {WEEKDAY_NAMES[pick.day.weekday()]}s.")
    require_time(pick, scheduled, label)
    if start <= now:
        raise Unbookable(f"{label} of {pick.day.isoformat()} has already {past}.")
    return Claim(
        scenario=scenario, venue_id=venue_id, unit=unit, capacity=capacity,
        slots={pick.day.isoformat(): pick.quantity}, start=start.isoformat(timespec="minutes"),
        quantity=pick.quantity, price_usd=unit_price_usd * pick.quantity,
    )


def fewer_left(label: str, claim: Claim, what: str, slot: str) -> Unbookable:
    """The sold-out error of a dated run: fewer than the claim's quantity of ``what`` left on ``slot``."""
    return Unbookable(f"{label} has fewer than {claim.quantity} {what} left on {slot}.")


def sold_unit(unit: U | None, refusal: str) -> U:
    """A venue's unit of one code (a room type, a cabin, a seat type); Unbookable ``refusal`` when it has none."""
    if unit is None:
        raise Unbookable(refusal)
    return unit


def require_time(pick: Pick, scheduled: time, label: str) -> None:
    """A pick may leave the time out; if it names one, it must be the scheduled one."""
    if pick.at is not None and pick.at != scheduled:
        raise Unbookable(f"{label} starts at {scheduled:%H:%M}, not {pick.at:%H:%M}.")


def differs(wanted: Any, actual: str | int) -> bool:
    """For ranking similar venues: True when a preference is set and the venue does not match it."""
    return wanted is not None and not same(str(wanted), str(actual))
