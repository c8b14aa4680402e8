"""The sandbox's job API and payment, one flow for every scenario.

A provider of the catalog (:mod:`errand.sandbox.catalog`) answers searches, venue
switches and checkouts for the scenarios it sells. The scenario modules say what a venue
offers and what a booking takes; :mod:`errand.sandbox.inventory` keeps the count.

A checkout looks the offer's venue up, meets the provider's obstacles for it, and places
the booking under the caller's Idempotency-Key: behind a card gate it is held (default
900 s) until paid at the checkout page, without one it is booked at once. A flaky venue
is counted by the caller in a unit of work of its own, since the count must survive the
failure it causes.

Payment: the checkout page posts a card number; ``4242 4242 4242 4242`` pays, any other
is declined. The number is compared and dropped, never stored or logged.

Expired holds give their inventory back lazily and through :func:`release_expired_holds`,
which the composition root runs periodically.

Errors are the sandbox's declared ones (:mod:`errand.sandbox.errors`; the app maps their
kinds to statuses): not_found ``venue_not_served`` / ``unknown_venue`` / ``not_found``,
unauthorized ``login_required``, forbidden ``captcha_required``, unavailable
``provider_flaky``, conflict ``no_availability`` / ``idempotency_conflict`` /
``invalid_state`` / ``card_declined``, invalid ``invalid`` / ``unsupported_scenario``.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from errand.kit import clock
from errand.kit.errors import InvalidState
from errand.models.sandbox_booking import SandboxBooking
from errand.sandbox import inventory
from errand.sandbox.catalog import Provider
from errand.sandbox.errors import CardDeclined, Invalid, NotServed, UnsupportedScenario
from errand.sandbox.flights import Flights
from errand.sandbox.hotels import Hotels
from errand.sandbox.inventory import release_expired_holds
from errand.sandbox.offers import Pick, Query, Scenario, Target
from errand.sandbox.restaurants import Restaurants
from errand.sandbox.tickets import Tickets

__all__ = [
    "alternatives", "checkout", "describe", "get_hold", "hold_view", "ledger", "locate", "pay", "release_expired_holds",
    "search", "summary", "target",
]

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (Restaurants(), Hotels(), Flights(), Tickets())}
TEST_CARD = "4242424242424242"
# A venue switch needs a few good candidates, not the whole city.
ALTERNATIVE_VENUES = 5


def _scenario(provider: Provider, name: str) -> Scenario:
    if name not in provider.scenarios:
        raise UnsupportedScenario(f"{provider.display_name} does not sell {name} bookings.")
    return SCENARIOS[name]


def target(provider: Provider, query: Query) -> Target:
    """What a search is about, once the provider let it through (flakiness aside)."""
    found = _scenario(provider, query.scenario).target(provider, query)
    provider.refuse(found.keys, found.label)
    return found


def describe(provider: Provider, query: Query) -> dict[str, Any]:
    """The venue a query names, as this provider sells it: UnknownVenue, or NotServed when it does not sell it."""
    scenario = _scenario(provider, query.scenario)
    found = scenario.target(provider, query)
    facts = scenario.facts(found.venues[0]) if provider.serves(found.keys) else None
    if facts is None:
        raise NotServed(f"{provider.display_name} does not sell {found.label}.")
    return facts


async def search(session: AsyncSession, provider: Provider, query: Query, found: Target) -> list[dict[str, Any]]:
    """Every offer of the target venues on the date that fits the query's quantity."""
    scenario = SCENARIOS[query.scenario]
    return [
        offer.to_json(provider.id, scenario.name)
        for venue in found.venues for offer in await scenario.offers(session, venue, query)
    ]


async def alternatives(session: AsyncSession, provider: Provider, query: Query) -> list[dict[str, Any]]:
    """Offers at the most similar other venues this provider sells, up to ALTERNATIVE_VENUES of them."""
    scenario = _scenario(provider, query.scenario)
    found: list[dict[str, Any]] = []
    venues = 0
    for venue, keys in scenario.similar(query):
        if venues == ALTERNATIVE_VENUES:
            break
        if not provider.sells(keys):
            continue
        offers = [o for o in await scenario.offers(session, venue, query) if scenario.keeps(o, query)]
        found += [o.to_json(provider.id, scenario.name) for o in offers]
        venues += bool(offers)
    return found


def locate(provider: Provider, pick: Pick) -> tuple[Scenario, Any, tuple[str, ...]]:
    """The scenario and venue of a picked offer, once the provider let it through (flakiness aside)."""
    for name in provider.scenarios:
        found = SCENARIOS[name].lookup(pick.venue_id)
        if found is not None:
            venue, keys, label = found
            provider.refuse(keys, label)
            return SCENARIOS[name], venue, keys
    raise NotServed(f"There is no venue {pick.venue_id!r}.")


async def checkout(
    session: AsyncSession, provider: Provider, scenario: Scenario, venue: Any, pick: Pick, *,
    traveler: dict[str, Any], ttl_seconds: int, idempotency_key: str,
) -> SandboxBooking:
    """Hold the offer for payment (card gate) or book it; the same key and body give the same hold."""
    named = traveler.get("name") or (traveler.get("first_name") and traveler.get("last_name"))
    missing = ([] if named else ["name (or first_name and last_name)"]) + [
        f for f in scenario.traveler_fields if not traveler.get(f)
    ]
    if missing:
        raise Invalid(f"The traveler needs {', '.join(missing)}.")
    gated = provider.card_gate
    return await inventory.place(
        session, provider.id, idempotency_key=idempotency_key,
        request={
            "checkout": {
                "venue_id": pick.venue_id, "unit": pick.unit, "day": pick.day, "at": pick.at,
                "end_day": pick.end_day, "quantity": pick.quantity,
            },
            "traveler": traveler, "ttl_seconds": ttl_seconds,
        },
        status="held" if gated else "booked", guest=traveler, ttl_seconds=ttl_seconds if gated else None,
        handoff=gated, claim=lambda: scenario.claim(session, venue, pick),
        sold_out=lambda claim, slot: scenario.sold_out(session, venue, claim, slot),
    )


async def get_hold(session: AsyncSession, provider: Provider, hold_id: str) -> SandboxBooking:
    return await inventory.load(session, provider.id, hold_id, lock=False)


def hold_view(booking: SandboxBooking) -> dict[str, Any]:
    """A hold or booking as the job API shows it (the caller adds ``handoff_url``)."""
    return {
        "hold_id": booking.id, "status": inventory.public_status(booking), "scenario": booking.scenario,
        "venue_id": booking.venue_id, "unit": booking.unit, "start": booking.slot, "end": booking.slot_end,
        "quantity": booking.quantity, "total_price_usd": booking.price_usd,
        "expires_at": clock.iso(booking.hold_expires_at), "confirmation": booking.confirmation,
    }


LEDGER_STATUSES = ("held", "booked", "expired", "released", "cancelled")


async def ledger(session: AsyncSession, provider_id: str, since: datetime | None) -> dict[str, int]:
    """How many holds and bookings the provider created since ``since``, by the status a caller sees now.

    A hold past its expiry counts as ``expired`` even before it is swept (as :func:`hold_view`
    shows it). Read-only: what a benchmark compares with the jobs that reached payment.
    """
    mine = [SandboxBooking.provider_id == provider_id]
    if since is not None:
        mine.append(SandboxBooking.created_at >= since)
    rows = await session.execute(
        select(SandboxBooking.status, func.count()).where(*mine).group_by(SandboxBooking.status))
    counts = dict.fromkeys(LEDGER_STATUSES, 0) | {status: count for status, count in rows.all()}
    lapsed = (await session.execute(select(func.count()).where(
        *mine, SandboxBooking.status == "held", SandboxBooking.hold_expires_at <= clock.now()))).scalar_one()
    counts["held"] -= lapsed
    counts["expired"] += lapsed
    return counts


def summary(booking: SandboxBooking) -> dict[str, Any]:
    """What the checkout page shows of a hold, names included."""
    venue_name, unit_name = SCENARIOS[booking.scenario].names(booking.venue_id, booking.unit)
    return {**hold_view(booking), "venue_name": venue_name, "unit_name": unit_name}


async def pay(session: AsyncSession, booking: SandboxBooking, card_number: str) -> SandboxBooking:
    """Pay a held checkout (``booking`` loaded with a lock): the test card books it, others are declined."""
    if booking.status == "booked":
        return booking
    if inventory.public_status(booking) != "held":
        raise InvalidState(f"This hold is {inventory.public_status(booking)}; it can no longer be paid.")
    if card_number != TEST_CARD:
        raise CardDeclined("The card was declined.")
    return await inventory.confirm(session, booking)
