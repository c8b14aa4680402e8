"""Restaurants: the rules a real restaurant's booking system keeps.

A party is seated at one slot start and takes that many covers of the slot's
``covers_per_slot`` (:mod:`errand.sandbox.inventory` keeps the count). A request the
venue's rules refuse (too large a party, a past time, a closed day, outside hours,
between slot starts) or a full slot is :class:`~errand.sandbox.errors.Unbookable`
(409 ``no_availability``) with up to three nearest starts that would fit.

Two APIs reach it: the partner reservations API of ``sandbox-tables`` (find, hold,
confirm, book, modify, cancel: the functions below) and the job API
(:class:`Restaurants`, a :class:`~errand.sandbox.offers.Scenario`).
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from errand.kit.errors import InvalidState, NotFound
from errand.models.sandbox_booking import SandboxBooking
from errand.sandbox import inventory
from errand.sandbox.catalog import Provider
from errand.sandbox.errors import Invalid, Unbookable
from errand.sandbox.inventory import Claim, SlotFull
from errand.sandbox.offers import Offer, Pick, Query, Scenario, Target, differs, unknown
from errand.sandbox.world import WEEKDAY_NAMES, Restaurant, load_world, local_now

TABLE = "table"


def slot_key(start: datetime) -> str:
    """A venue-local start as stored and shown: ``YYYY-MM-DDTHH:MM``."""
    return start.isoformat(timespec="minutes")


@dataclass(frozen=True)
class TableRequest:
    """A party to seat: ``start`` is naive venue-local time, ``guest`` name/email/phone."""

    venue_id: str
    start: datetime
    party_size: int
    guest: dict[str, str]


# --- the partner reservations API --------------------------------------------------------


def get_restaurant(venue_id: str) -> Restaurant:
    venue = load_world().restaurants.get(venue_id)
    if venue is None:
        raise NotFound(f"There is no restaurant {venue_id!r}.")
    return venue


async def availability(
    session: AsyncSession, venue: Restaurant, day: date, party_size: int
) -> list[tuple[datetime, int]]:
    """Future slot starts on ``day`` that can still seat the party, with covers remaining."""
    if party_size > venue.max_party_size:
        return []
    now = local_now(venue.timezone)
    starts = [s for s in venue.slot_starts(day) if s > now]
    remaining = await _remaining(session, venue, starts)
    return [(s, remaining[s]) for s in starts if remaining[s] >= party_size]


async def hold(
    session: AsyncSession, provider_id: str, request: TableRequest, *,
    idempotency_key: str, ttl_seconds: int = inventory.DEFAULT_HOLD_TTL_SECONDS,
) -> SandboxBooking:
    """Take the covers for ``ttl_seconds``; they come back unless the hold is confirmed."""
    return await _place(session, provider_id, request, "held", idempotency_key, ttl_seconds)


async def book(
    session: AsyncSession, provider_id: str, request: TableRequest, *, idempotency_key: str
) -> SandboxBooking:
    """Seat the party now, with a confirmation code."""
    return await _place(session, provider_id, request, "booked", idempotency_key, None)


async def _place(
    session: AsyncSession, provider_id: str, request: TableRequest, status: str,
    idempotency_key: str, ttl_seconds: int | None,
) -> SandboxBooking:
    venue = get_restaurant(request.venue_id)

    async def claim() -> Claim:
        await _ensure_bookable(session, venue, request.start, request.party_size)
        return _claim(venue, request.start, request.party_size)

    return await inventory.place(
        session, provider_id, idempotency_key=idempotency_key,
        request={
            "status": status, "venue_id": venue.id, "start": slot_key(request.start),
            "party_size": request.party_size, "guest": request.guest, "ttl_seconds": ttl_seconds,
        },
        status=status, guest=request.guest, ttl_seconds=ttl_seconds, handoff=False,
        claim=claim, sold_out=lambda wanted, _slot: _sold_out(session, venue, request.start, wanted.quantity),
    )


async def modify(
    session: AsyncSession, provider_id: str, booking_id: str, *,
    start: datetime | None = None, party_size: int | None = None, guest: dict[str, str] | None = None,
) -> SandboxBooking:
    """Move a booking to another start or party size, all or nothing.

    The old covers are given back and the new ones taken in one transaction; if the new
    slot cannot seat the party, :class:`Unbookable` is raised and the transaction's
    rollback leaves the booking and both slots exactly as they were.
    """
    booking = await inventory.load(session, provider_id, booking_id, lock=True)
    if booking.status != "booked":
        raise InvalidState(
            f"{booking_id} is {inventory.public_status(booking)}; only a booking can be changed."
        )
    venue = get_restaurant(booking.venue_id)
    new_start = start if start is not None else datetime.fromisoformat(booking.slot)
    new_party = party_size if party_size is not None else booking.quantity
    if (slot_key(new_start), new_party) != (booking.slot, booking.quantity):
        await _ensure_bookable(session, venue, new_start, new_party)
        wanted = _claim(venue, new_start, new_party)
        try:
            await inventory.take(session, venue.id, TABLE, wanted.capacity, wanted.slots, replacing=booking)
        except SlotFull:
            raise await _sold_out(session, venue, new_start, new_party) from None
        booking.slot, booking.quantity = wanted.start, wanted.quantity
        booking.slots, booking.price_usd = wanted.slots, wanted.price_usd
    if guest is not None:
        booking.guest = guest
    await session.flush()
    return booking


def _claim(venue: Restaurant, start: datetime, party_size: int) -> Claim:
    slot = slot_key(start)
    return Claim(
        scenario="restaurant", venue_id=venue.id, unit=TABLE, capacity=venue.covers_per_slot,
        slots={slot: party_size}, start=slot, quantity=party_size,
        price_usd=venue.price_per_person_usd * party_size,
    )


async def _sold_out(session: AsyncSession, venue: Restaurant, start: datetime, party_size: int) -> Unbookable:
    nearest = await _nearest(session, venue, start, party_size)
    when = f"{start:%H:%M} on {start.date().isoformat()}"
    return Unbookable(f"{venue.name} has no table for {party_size} at {when}.", nearest)


# --- the job API ------------------------------------------------------------------------


class Restaurants(Scenario):
    name = "restaurant"

    def target(self, provider: Provider, query: Query) -> Target:
        world = load_world()
        found = world.find_restaurants(query.venue, query.city) if query.venue else []
        if not found:
            raise unknown(provider, "restaurant", query, world.restaurants.values())
        return Target(venues=(found[0],), keys=(found[0].id,), label=found[0].name)

    async def offers(self, session: AsyncSession, venue: Restaurant, query: Query) -> list[Offer]:
        price = venue.price_per_person_usd
        return [
            Offer(
                venue_id=venue.id, venue_name=venue.name, city=venue.city, unit=TABLE, unit_name="Table",
                start=start, end=None, quantity=query.quantity, unit_price_usd=price,
                total_price_usd=price * query.quantity, remaining=left,
                attributes={"cuisine": venue.cuisine, "neighborhood": venue.neighborhood, "timezone": venue.timezone},
            )
            for start, left in await availability(session, venue, query.day, query.quantity)
        ]

    def similar(self, query: Query) -> list[tuple[Restaurant, tuple[str, ...]]]:
        world = load_world()
        asked = next(iter(world.find_restaurants(query.venue, query.city)), None) if query.venue else None
        city = query.city or (asked.city if asked else None)
        if city is None:
            return []
        cuisine = query.preferences.get("cuisine") or (asked.cuisine if asked else None)
        neighborhood = query.preferences.get("neighborhood") or (asked.neighborhood if asked else None)
        price = asked.price_per_person_usd if asked else 0
        others = [r for r in world.find_restaurants(city=city) if asked is None or r.id != asked.id]
        others.sort(key=lambda r: (
            differs(cuisine, r.cuisine), differs(neighborhood, r.neighborhood),
            abs(r.price_per_person_usd - price), r.name,
        ))
        return [(r, (r.id,)) for r in others]

    def facts(self, venue: Restaurant) -> dict[str, Any]:
        return {"venue_id": venue.id, "venue_name": venue.name, "city": venue.city,
                "attributes": {"cuisine": venue.cuisine, "neighborhood": venue.neighborhood},
                "price_usd": venue.price_per_person_usd}

    def keeps(self, offer: Offer, query: Query) -> bool:
        return query.at is None or offer.start.time() == query.at

    def lookup(self, venue_id: str) -> tuple[Restaurant, tuple[str, ...], str] | None:
        venue = load_world().restaurants.get(venue_id)
        return (venue, (venue.id,), venue.name) if venue else None

    async def claim(self, session: AsyncSession, venue: Restaurant, pick: Pick) -> Claim:
        if pick.unit != TABLE or pick.at is None:
            raise Invalid(f"A table is booked as unit {TABLE!r} at a start time.")
        start = datetime.combine(pick.day, pick.at)
        await _ensure_bookable(session, venue, start, pick.quantity)
        return _claim(venue, start, pick.quantity)

    async def sold_out(self, session: AsyncSession, venue: Restaurant, claim: Claim, slot: str) -> Unbookable:
        return await _sold_out(session, venue, datetime.fromisoformat(slot), claim.quantity)

    def names(self, venue_id: str, unit: str) -> tuple[str, str]:
        return get_restaurant(venue_id).name, "Table"


# --- bookability and suggestions --------------------------------------------------------


async def _remaining(session: AsyncSession, venue: Restaurant, starts: list[datetime]) -> dict[datetime, int]:
    free = await inventory.remaining(session, venue.id, TABLE, venue.covers_per_slot, [slot_key(s) for s in starts])
    return {s: free[slot_key(s)] for s in starts}


async def _ensure_bookable(session: AsyncSession, venue: Restaurant, start: datetime, party_size: int) -> None:
    """Raise Unbookable, with suggestions, when the venue's rules (not its capacity) refuse the request."""
    now = local_now(venue.timezone)
    opens, closes = f"{venue.opens:%H:%M}", f"{venue.closes:%H:%M}"
    reason = None
    if party_size > venue.max_party_size:
        reason = (f"{venue.name} does not have enough capacity for a party of {party_size} "
                  f"(largest party: {venue.max_party_size}).")
    elif start <= now:
        when = start.isoformat(sep=" ", timespec="minutes")
        reason = f"{when} has already passed at {venue.name} (local time {now:%H:%M})."
    elif not venue.is_open_on(start.date()):
        reason = f"{venue.name} is closed on {WEEKDAY_NAMES[start.weekday()]}s."
    elif not venue.opens <= start.time() < venue.closes:
        last = venue.slot_starts(start.date())[-1]
        reason = f"No table at {start:%H:%M}: {venue.name} seats {opens}–{closes} (last seating {last:%H:%M})."
    elif not venue.is_slot_start(start):
        reason = (f"No table at {start:%H:%M}: {venue.name} seats parties every "
                  f"{venue.slot_minutes} minutes from {opens}.")
    if reason is not None:
        raise Unbookable(reason, await _nearest(session, venue, start, party_size))


async def _nearest(session: AsyncSession, venue: Restaurant, start: datetime, party_size: int) -> list[str]:
    """Up to three future starts that fit the party, nearest to ``start`` first.

    They are on the requested date as ``HH:MM``; when the venue is closed that day, on its
    next open day as ``YYYY-MM-DDTHH:MM``, since a bare time would point at the closed day.
    """
    if party_size > venue.max_party_size:
        return []
    day, with_date = start.date(), False
    if not venue.is_open_on(day):
        ahead = (day + timedelta(days=n) for n in range(1, min(8, (date.max - day).days + 1)))
        open_days = [d for d in ahead if venue.is_open_on(d)]
        if not open_days:
            return []
        day, with_date = open_days[0], True
    reference = datetime.combine(day, start.time())
    now = local_now(venue.timezone)
    candidates = [s for s in venue.slot_starts(day) if s > now and s != start]
    remaining = await _remaining(session, venue, candidates)
    fits = sorted((s for s in candidates if remaining[s] >= party_size), key=lambda s: (abs(s - reference), s))
    return [slot_key(s) if with_date else f"{s:%H:%M}" for s in fits[:3]]
