"""Flights: passengers take seats in one cabin of one flight on one departure date.

Seats are counted per cabin per date (``sandbox_slots`` rows keyed by the flight number,
the cabin and the date), only on the weekdays the flight operates and only in cabins it
sells (seats > 0). A route is searched by airport codes or city names; its obstacles
at a provider are filed under the city pair (``"New York-Tokyo"``) and a provider may
also leave single flight numbers out. Other flights on the route are already in the
search, so a venue switch has nothing to add.
"""

from sqlalchemy.ext.asyncio import AsyncSession

from errand.sandbox import inventory
from errand.sandbox.catalog import Provider
from errand.sandbox.errors import Invalid, NotServed, Unbookable
from errand.sandbox.inventory import Claim
from errand.sandbox.offers import Offer, Pick, Query, Scenario, Target, dated_claim, fewer_left, sold_unit
from errand.sandbox.world import Cabin, Flight, load_world, local_now


def _name(flight: Flight) -> str:
    return f"{flight.airline.name} {flight.number}"


def _cabin(flight: Flight, code: str) -> Cabin:
    return sold_unit(flight.cabin(code), f"{flight.number} does not sell {code!r} seats.")


class Flights(Scenario):
    name = "flight"
    traveler_fields = ("dob", "passport_number", "passport_country")

    def target(self, provider: Provider, query: Query) -> Target:
        if not query.origin or not query.dest:
            raise Invalid("A flight search needs an origin and a destination.")
        scheduled = load_world().flights_between(query.origin, query.dest)
        label = f"flights from {query.origin} to {query.dest}"
        if not scheduled:
            raise NotServed(f"There are no {label}.")
        served = tuple(f for f in scheduled if provider.serves((f.number,)))
        if not served:
            raise NotServed(f"{provider.display_name} sells none of the {label}.")
        return Target(venues=served, keys=tuple(sorted({f.route for f in scheduled})), label=label)

    async def offers(self, session: AsyncSession, flight: Flight, query: Query) -> list[Offer]:
        day, slot = query.day, query.day.isoformat()
        if not flight.operates_on(day) or flight.departure(day) <= local_now(flight.origin_timezone):
            return []
        offers = []
        for cabin in (c for c in flight.cabins if c.sold):
            left = (await inventory.remaining(session, flight.number, cabin.code, cabin.seats, [slot]))[slot]
            if left >= query.quantity:
                offers.append(Offer(
                    venue_id=flight.number, venue_name=_name(flight), city=flight.origin_city, unit=cabin.code,
                    unit_name=cabin.name, start=flight.departure(day), end=None, quantity=query.quantity,
                    unit_price_usd=cabin.fare_usd, total_price_usd=cabin.fare_usd * query.quantity,
                    remaining=left,
                    attributes={
                        "flight_number": flight.number, "airline": flight.airline.code,
                        "airline_name": flight.airline.name, "origin": flight.origin, "dest": flight.dest,
                        "origin_city": flight.origin_city, "dest_city": flight.dest_city,
                        "arrives_local": flight.arrival(day).isoformat(timespec="minutes"),
                        "duration_minutes": flight.duration_minutes,
                    },
                ))
        return offers

    def lookup(self, venue_id: str) -> tuple[Flight, tuple[str, ...], str] | None:
        flight = load_world().flights.get(venue_id)
        return (flight, (flight.number, flight.route), flight.number) if flight else None

    async def claim(self, session: AsyncSession, flight: Flight, pick: Pick) -> Claim:
        cabin = _cabin(flight, pick.unit)
        return dated_claim(
            "flight", pick, venue_id=flight.number, label=flight.number, runs=flight.operates_on(pick.day),
            verb="fly", scheduled=flight.departs_local, start=flight.departure(pick.day),
            now=local_now(flight.origin_timezone), past="departed", unit=cabin.code, capacity=cabin.seats,
            unit_price_usd=cabin.fare_usd,
        )

    async def sold_out(self, session: AsyncSession, flight: Flight, claim: Claim, slot: str) -> Unbookable:
        return fewer_left(flight.number, claim, f"{_cabin(flight, claim.unit).name} seats", slot)

    def names(self, venue_id: str, unit: str) -> tuple[str, str]:
        flight = load_world().flights[venue_id]
        return f"{_name(flight)} {flight.origin}–{flight.dest}", _cabin(flight, unit).name

