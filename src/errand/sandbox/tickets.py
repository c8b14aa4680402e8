"""Event tickets: tickets of one seat type for one performance (the scenario "activity").

Tickets are counted per seat type per performance date (``sandbox_slots`` rows keyed by
the event id, the seat type and the date), only on the weekdays the event plays. A venue
switch offers the other events in the same city on the same date, same category first.
"""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from errand.sandbox import inventory
from errand.sandbox.catalog import Provider
from errand.sandbox.errors import Unbookable
from errand.sandbox.inventory import Claim
from errand.sandbox.offers import Offer, Pick, Query, Scenario, Target, dated_claim, differs, fewer_left, sold_unit, unknown
from errand.sandbox.world import Event, SeatType, load_world, local_now


def _seat_type(event: Event, code: str) -> SeatType:
    return sold_unit(event.seat_type(code), f"{event.name} has no seat type {code!r}.")


class Tickets(Scenario):
    name = "activity"

    def target(self, provider: Provider, query: Query) -> Target:
        world = load_world()
        found = world.find_events(query.venue, query.city) if query.venue else []
        if not found:
            raise unknown(provider, "event", query, world.events.values())
        return Target(venues=(found[0],), keys=(found[0].id,), label=found[0].name)

    async def offers(self, session: AsyncSession, event: Event, query: Query) -> list[Offer]:
        day, slot = query.day, query.day.isoformat()
        if not event.plays_on(day) or event.start(day) <= local_now(event.timezone):
            return []
        offers = []
        for seat in event.seat_types:
            left = (await inventory.remaining(session, event.id, seat.code, seat.tickets, [slot]))[slot]
            if left >= query.quantity:
                offers.append(Offer(
                    venue_id=event.id, venue_name=event.name, city=event.city, unit=seat.code, unit_name=seat.name,
                    start=event.start(day), end=None, quantity=query.quantity, unit_price_usd=seat.price_usd,
                    total_price_usd=seat.price_usd * query.quantity, remaining=left,
                    attributes={"venue": event.venue, "category": event.category, "timezone": event.timezone},
                ))
        return offers

    def similar(self, query: Query) -> list[tuple[Event, tuple[str, ...]]]:
        world = load_world()
        asked = next(iter(world.find_events(query.venue, query.city)), None) if query.venue else None
        city = query.city or (asked.city if asked else None)
        if city is None:
            return []
        category = query.preferences.get("category") or (asked.category if asked else None)
        others = [e for e in world.find_events(city=city) if asked is None or e.id != asked.id]
        others.sort(key=lambda e: (differs(category, e.category), e.name))
        return [(e, (e.id,)) for e in others]

    def facts(self, event: Event) -> dict[str, Any]:
        return {"venue_id": event.id, "venue_name": event.name, "city": event.city,
                "attributes": {"category": event.category, "venue": event.venue},
                "price_usd": min(s.price_usd for s in event.seat_types)}

    def lookup(self, venue_id: str) -> tuple[Event, tuple[str, ...], str] | None:
        event = load_world().events.get(venue_id)
        return (event, (event.id,), event.name) if event else None

    async def claim(self, session: AsyncSession, event: Event, pick: Pick) -> Claim:
        seat = _seat_type(event, pick.unit)
        return dated_claim(
            "activity", pick, venue_id=event.id, label=event.name, runs=event.plays_on(pick.day), verb="play",
            scheduled=event.starts_local, start=event.start(pick.day), now=local_now(event.timezone),
            past="started", unit=seat.code, capacity=seat.tickets, unit_price_usd=seat.price_usd,
        )

    async def sold_out(self, session: AsyncSession, event: Event, claim: Claim, slot: str) -> Unbookable:
        return fewer_left(event.name, claim, f"{_seat_type(event, claim.unit).name} tickets", slot)

    def names(self, venue_id: str, unit: str) -> tuple[str, str]:
        event = load_world().events[venue_id]
        return f"{event.name}, {event.venue}", _seat_type(event, unit).name
