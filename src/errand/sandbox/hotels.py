"""Hotels: a stay takes one room of a type on every night from check-in to checkout.

Rooms are counted per room type per night (``sandbox_slots`` rows keyed by the night's
date). A stay takes all its nights in one transaction or none of them, so two stays that
overlap on one full night cannot both succeed, and a refused stay leaves every night as
it was. A room type sleeps up to ``max_adults``; a search for more adults lists none.
"""

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from errand.sandbox import inventory
from errand.sandbox.catalog import Provider
from errand.sandbox.errors import Invalid, Unbookable
from errand.sandbox.inventory import Claim
from errand.sandbox.offers import Offer, Pick, Query, Scenario, Target, differs, require_time, sold_unit, unknown
from errand.sandbox.world import Hotel, RoomType, load_world, local_now

MAX_NIGHTS = 30


def _nights(check_in: date, checkout: date | None) -> list[str]:
    """The nights of a stay, as the dates they begin on."""
    if checkout is None or not 0 < (checkout - check_in).days <= MAX_NIGHTS:
        raise Invalid(
            f"A stay needs a checkout date 1 to {MAX_NIGHTS} nights after check-in."
        )
    return [(check_in + timedelta(days=n)).isoformat() for n in range((checkout - check_in).days)]


def _room(hotel: Hotel, code: str) -> RoomType:
    return sold_unit(hotel.room_type(code), f"{hotel.name} has no room type {code!r}.")


def _stars(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


class Hotels(Scenario):
    name = "hotel"

    def target(self, provider: Provider, query: Query) -> Target:
        _nights(query.day, query.end_day)
        world = load_world()
        found = world.find_hotels(query.venue, query.city) if query.venue else []
        if not found:
            raise unknown(provider, "hotel", query, world.hotels.values())
        return Target(venues=(found[0],), keys=(found[0].id,), label=found[0].name)

    async def offers(self, session: AsyncSession, hotel: Hotel, query: Query) -> list[Offer]:
        nights = _nights(query.day, query.end_day)
        if query.day < local_now(hotel.timezone).date():
            return []
        offers = []
        for room in hotel.room_types:
            if room.max_adults < query.quantity:
                continue
            left = min((await inventory.remaining(session, hotel.id, room.code, room.rooms, nights)).values())
            if left >= 1:
                offers.append(Offer(
                    venue_id=hotel.id, venue_name=hotel.name, city=hotel.city, unit=room.code, unit_name=room.name,
                    start=datetime.combine(query.day, hotel.check_in), end=query.end_day, quantity=query.quantity,
                    unit_price_usd=room.nightly_rate_usd, total_price_usd=room.nightly_rate_usd * len(nights),
                    remaining=left,
                    attributes={
                        "star_rating": hotel.star_rating, "neighborhood": hotel.neighborhood, "nights": len(nights),
                        "max_adults": room.max_adults, "check_in": f"{hotel.check_in:%H:%M}",
                        "check_out": f"{hotel.check_out:%H:%M}", "timezone": hotel.timezone,
                    },
                ))
        return offers

    def similar(self, query: Query) -> list[tuple[Hotel, tuple[str, ...]]]:
        world = load_world()
        asked = next(iter(world.find_hotels(query.venue, query.city)), None) if query.venue else None
        city = query.city or (asked.city if asked else None)
        if city is None:
            return []
        stars = _stars(query.preferences.get("star_rating")) or (asked.star_rating if asked else None)
        neighborhood = query.preferences.get("neighborhood") or (asked.neighborhood if asked else None)
        others = [h for h in world.find_hotels(city=city) if asked is None or h.id != asked.id]
        others.sort(key=lambda h: (
            abs(h.star_rating - stars) if stars else 0,
            differs(neighborhood, h.neighborhood), h.name,
        ))
        return [(h, (h.id,)) for h in others]

    def facts(self, hotel: Hotel) -> dict[str, Any]:
        return {"venue_id": hotel.id, "venue_name": hotel.name, "city": hotel.city,
                "attributes": {"star_rating": hotel.star_rating, "neighborhood": hotel.neighborhood},
                "price_usd": min(r.nightly_rate_usd for r in hotel.room_types)}

    def lookup(self, venue_id: str) -> tuple[Hotel, tuple[str, ...], str] | None:
        hotel = load_world().hotels.get(venue_id)
        return (hotel, (hotel.id,), hotel.name) if hotel else None

    async def claim(self, session: AsyncSession, hotel: Hotel, pick: Pick) -> Claim:
        room = _room(hotel, pick.unit)
        nights = _nights(pick.day, pick.end_day)
        require_time(pick, hotel.check_in, f"Check-in at {hotel.name}")
        if pick.quantity > room.max_adults:
            raise Unbookable(f"A {room.name} at {hotel.name} sleeps up to {room.max_adults} adults.")
        if pick.day < local_now(hotel.timezone).date():
            raise Unbookable(f"{pick.day.isoformat()} has already passed at {hotel.name}.")
        check_in = datetime.combine(pick.day, hotel.check_in)
        return Claim(
            scenario="hotel", venue_id=hotel.id, unit=room.code, capacity=room.rooms,
            slots=dict.fromkeys(nights, 1), start=check_in.isoformat(timespec="minutes"),
            end=pick.end_day.isoformat() if pick.end_day else None, quantity=pick.quantity,
            price_usd=room.nightly_rate_usd * len(nights),
        )

    async def sold_out(self, session: AsyncSession, hotel: Hotel, claim: Claim, slot: str) -> Unbookable:
        return Unbookable(f"{hotel.name} has no {_room(hotel, claim.unit).name} left on the night of {slot}.")

    def names(self, venue_id: str, unit: str) -> tuple[str, str]:
        hotel = load_world().hotels[venue_id]
        return hotel.name, _room(hotel, unit).name
