"""Checkouts of the job API: holds behind a card gate, bookings without one, and the inventory they take.

Every test books on dates of its own (all in 2027). 2027-05-03 is a Monday.
"""

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from errand.kit.db import Database
from errand.kit.errors import DomainError
from errand.models.sandbox_booking import SandboxSlot
from errand.providers.base import Checkout, Offer, SearchQuery
from errand.providers.errors import NoAvailability
from errand.providers.sandbox import SandboxApiProvider
from errand.sandbox.service import release_expired_holds

Adapters = dict[str, SandboxApiProvider]
TRAVELER = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "phone": "+1 212 555 0100"}
FLYER = {**TRAVELER, "dob": "1990-12-10", "passport_number": "X1234567", "passport_country": "GB"}


def key() -> str:
    return f"test-{uuid.uuid4()}"


async def first_offer(provider: SandboxApiProvider, query: SearchQuery, **match: str) -> Offer:
    offers = [o for o in await provider.search(query) if all(getattr(o, k) == v for k, v in match.items())]
    assert offers, f"no offer matching {match}"
    return offers[0]


def stay(checkin: str, checkout: str, adults: int = 2, venue: str = "The Plaza") -> SearchQuery:
    return SearchQuery(scenario="hotel", venue=venue, city="New York", date=checkin, end_date=checkout,
                       quantity=adults)


def seats(day: str, passengers: int, origin: str = "LGA", dest: str = "SFO") -> SearchQuery:
    return SearchQuery(scenario="flight", origin=origin, dest=dest, date=day, quantity=passengers)


async def hold_of(sandbox: httpx.AsyncClient, provider_id: str, hold_id: str) -> dict[str, Any]:
    response = await sandbox.get(f"/api/{provider_id}/holds/{hold_id}")
    assert response.status_code == 200, response.text
    return response.json()


CHECKOUTS = [
    # (provider, query, traveler, card gate, total price)
    ("sandbox-tables", SearchQuery(scenario="restaurant", venue="Le Bernardin", city="New York", date="2027-05-03",
                                   time="19:00", quantity=3), TRAVELER, True, 3 * 225),
    ("sandbox-dine", SearchQuery(scenario="restaurant", venue="Carbone", city="New York", date="2027-05-03",
                                 quantity=4), TRAVELER, False, 4 * 120),
    ("sandbox-stays", stay("2027-05-03", "2027-05-06"), TRAVELER, True, 3 * 845),
    ("sandbox-rooms", stay("2027-05-03", "2027-05-05"), TRAVELER, False, 2 * 845),
    ("sandbox-air", seats("2027-05-03", 2), FLYER, True, 2 * 253),
    ("sandbox-fares", seats("2027-05-04", 3), FLYER, True, 3 * 253),
    ("sandbox-tickets", SearchQuery(scenario="activity", venue="Hamilton", city="New York", date="2027-05-04",
                                    quantity=2), TRAVELER, True, 2 * 192),
]


@pytest.mark.parametrize(("provider_id", "query", "traveler", "gated", "total"), CHECKOUTS,
                         ids=[c[0] for c in CHECKOUTS])
async def test_checkout_pauses_at_payment_behind_a_card_gate_and_books_without_one(
    providers: Adapters, sandbox: httpx.AsyncClient, sandbox_url: str,
    provider_id: str, query: SearchQuery, traveler: dict[str, str], gated: bool, total: int,
) -> None:
    provider = providers[provider_id]
    offer = (await provider.search(query))[0]
    assert offer.total_price_usd == total
    checkout = await provider.checkout(offer, traveler, idempotency_key=key())
    stored = await hold_of(sandbox, provider_id, checkout.hold_id)
    assert (stored["venue_id"], stored["unit"], stored["quantity"]) == (offer.venue_id, offer.unit, offer.quantity)
    assert stored["total_price_usd"] == total
    if gated:
        assert checkout.status == "paused_payment"
        assert checkout.handoff_url and checkout.handoff_url.startswith(f"{sandbox_url}/checkout/")
        assert checkout.expires_at is not None and checkout.confirmation is None
        assert stored["status"] == "held"
    else:
        assert checkout.status == "completed" and checkout.handoff_url is None
        assert checkout.confirmation and checkout.confirmation.startswith("SBX-")
        assert (stored["status"], stored["confirmation"]) == ("booked", checkout.confirmation)
    left = {(o.venue_id, o.unit, o.start): o.remaining for o in await provider.search(query)}
    taken = 1 if query.scenario == "hotel" else offer.quantity
    assert left.get((offer.venue_id, offer.unit, offer.start), 0) == offer.remaining - taken


async def test_same_key_returns_the_same_hold_and_another_body_is_a_conflict(providers: Adapters) -> None:
    tickets = providers["sandbox-tickets"]

    def hamilton(quantity: int) -> SearchQuery:
        return SearchQuery(scenario="activity", venue="Hamilton", city="New York", date="2027-05-05",
                           quantity=quantity)

    offer = await first_offer(tickets, hamilton(2), unit="BALC")
    same = key()
    racing = await asyncio.gather(*(tickets.checkout(offer, TRAVELER, idempotency_key=same) for _ in range(10)))
    assert len({c.hold_id for c in racing}) == 1
    assert (await first_offer(tickets, hamilton(1), unit="BALC")).remaining == 120 - 2
    with pytest.raises(DomainError) as caught:
        await tickets.checkout(offer.model_copy(update={"quantity": 3}), TRAVELER, idempotency_key=same)
    assert caught.value.kind == "conflict"
    assert caught.value.details["provider_error"] == "idempotency_conflict"
    assert (await first_offer(tickets, hamilton(1), unit="BALC")).remaining == 120 - 2


async def test_a_stay_takes_every_night_or_none(providers: Adapters, db: Database) -> None:
    rooms = providers["sandbox-rooms"]
    suite = await first_offer(rooms, stay("2027-05-11", "2027-05-12"), unit="STE")
    for _ in range(3):  # The Plaza has 3 suites: the night of 05-11 is now full
        assert (await rooms.checkout(suite, TRAVELER, idempotency_key=key())).status == "completed"
    three_nights = stay("2027-05-10", "2027-05-13")
    assert "STE" not in {o.unit for o in await rooms.search(three_nights)}
    wanted = suite.model_copy(update={"start": "2027-05-10T15:00", "end": "2027-05-13"})
    with pytest.raises(NoAvailability) as caught:
        await rooms.checkout(wanted, TRAVELER, idempotency_key=key())
    assert "night of 2027-05-11" in caught.value.message
    async with db.unit_of_work() as session:
        taken = dict((await session.execute(
            select(SandboxSlot.slot, SandboxSlot.taken).where(
                SandboxSlot.venue_id == "htl_the-plaza-new-york", SandboxSlot.unit == "STE",
                SandboxSlot.slot.in_(["2027-05-10", "2027-05-11", "2027-05-12"]),
            )
        )).all())
    assert taken.get("2027-05-10", 0) == 0 and taken["2027-05-11"] == 3 and taken.get("2027-05-12", 0) == 0
    for night in ("2027-05-10", "2027-05-12"):
        following = night[:8] + f"{int(night[8:]) + 1:02d}"
        assert (await first_offer(rooms, stay(night, following), unit="STE")).remaining == 3


async def test_the_last_seats_of_a_cabin_are_never_oversold(providers: Adapters) -> None:
    air = providers["sandbox-air"]
    first = await first_offer(air, seats("2027-05-14", 5), venue_id="UA107", unit="first")
    await air.checkout(first, FLYER, idempotency_key=key())  # 5 of the 8 first-class seats
    last = await first_offer(air, seats("2027-05-14", 1), venue_id="UA107", unit="first")
    assert last.remaining == 3
    outcomes = await asyncio.gather(
        *(air.checkout(last, FLYER, idempotency_key=key()) for _ in range(30)), return_exceptions=True
    )
    held = [o for o in outcomes if isinstance(o, Checkout)]
    refused = [o for o in outcomes if isinstance(o, NoAvailability)]
    assert (len(held), len(refused)) == (3, 27), [o for o in outcomes if isinstance(o, Exception)][:3]
    assert "first" not in {o.unit for o in await air.search(seats("2027-05-14", 1)) if o.venue_id == "UA107"}


async def test_an_expired_hold_gives_its_seats_back(providers: Adapters, sandbox: httpx.AsyncClient) -> None:
    fares = providers["sandbox-fares"]
    first = await first_offer(fares, seats("2027-05-17", 8), venue_id="UA107", unit="first")
    body = {"offer": {"venue_id": "UA107", "unit": "first", "start": first.start, "quantity": 8},
            "traveler": FLYER, "ttl_seconds": 1}
    response = await sandbox.post("/api/sandbox-fares/checkouts", json=body, headers={"Idempotency-Key": key()})
    assert response.status_code == 201, response.text
    hold_id = response.json()["hold_id"]
    one = first.model_copy(update={"quantity": 1})
    with pytest.raises(NoAvailability):
        await fares.checkout(one, FLYER, idempotency_key=key())
    await asyncio.sleep(1.2)
    assert (await fares.checkout(one, FLYER, idempotency_key=key())).status == "paused_payment"
    assert (await hold_of(sandbox, "sandbox-fares", hold_id))["status"] == "expired"
    assert (await first_offer(fares, seats("2027-05-17", 1), venue_id="UA107", unit="first")).remaining == 7


async def test_the_sweep_gives_back_every_night_of_an_expired_stay(
    providers: Adapters, sandbox: httpx.AsyncClient, db: Database
) -> None:
    body = {"offer": {"venue_id": "htl_the-plaza-new-york", "unit": "DBL", "start": "2027-05-20",
                      "end": "2027-05-23", "quantity": 4}, "traveler": TRAVELER, "ttl_seconds": 1}
    response = await sandbox.post("/api/sandbox-stays/checkouts", json=body, headers={"Idempotency-Key": key()})
    assert response.status_code == 201, response.text
    await asyncio.sleep(1.2)
    async with db.unit_of_work() as session:
        assert await release_expired_holds(session) >= 1
    async with db.unit_of_work() as session:
        taken = (await session.execute(
            select(SandboxSlot.taken).where(SandboxSlot.venue_id == "htl_the-plaza-new-york",
                                            SandboxSlot.unit == "DBL", SandboxSlot.slot.like("2027-05-2%"))
        )).scalars().all()
    assert sorted(taken) == [0, 0, 0]


@pytest.mark.parametrize(("provider_id", "offer", "why"), [
    ("sandbox-air", {"venue_id": "DL267", "unit": "economy", "start": "2027-05-24T07:20", "quantity": 1},
     "does not fly on Mondays"),
    ("sandbox-air", {"venue_id": "UA15", "unit": "first", "start": "2027-05-25T08:00", "quantity": 1},
     "does not sell 'first' seats"),
    ("sandbox-air", {"venue_id": "UA15", "unit": "economy", "start": "2027-05-25T09:00", "quantity": 1},
     "starts at 08:00"),
    ("sandbox-stays", {"venue_id": "htl_the-plaza-new-york", "unit": "STD", "start": "2027-05-25",
                       "end": "2027-05-26", "quantity": 3}, "sleeps up to 2 adults"),
    ("sandbox-tickets", {"venue_id": "evt_hamilton-new-york", "unit": "ORCH", "start": "2027-05-24T19:00",
                         "quantity": 2}, "does not play on Mondays"),
    ("sandbox-tables", {"venue_id": "rst_le-bernardin-new-york", "unit": "table", "start": "2027-05-25T19:10",
                        "quantity": 2}, "every 30 minutes"),
    ("sandbox-tables", {"venue_id": "rst_le-bernardin-new-york", "unit": "table", "start": "2026-01-05T19:00",
                        "quantity": 2}, "already passed"),
])
async def test_offers_the_venue_does_not_sell_are_no_availability(
    sandbox: httpx.AsyncClient, provider_id: str, offer: dict[str, Any], why: str
) -> None:
    response = await sandbox.post(f"/api/{provider_id}/checkouts", json={"offer": offer, "traveler": FLYER},
                                  headers={"Idempotency-Key": key()})
    assert response.status_code == 409, response.text
    assert response.json()["error"] == "no_availability" and why in response.json()["message"]


@pytest.mark.parametrize(("provider_id", "body", "headers"), [
    ("sandbox-air", {"offer": {"venue_id": "UA15", "unit": "economy", "start": "2027-05-25T08:00", "quantity": 1},
                     "traveler": TRAVELER}, True),  # flights need passport details
    ("sandbox-air", {"offer": {"venue_id": "UA15", "unit": "economy", "start": "2027-05-25T08:00", "quantity": 1},
                     "traveler": FLYER}, False),  # no Idempotency-Key
    ("sandbox-air", {"offer": {"venue_id": "UA15", "unit": "economy", "start": "25/05/2027", "quantity": 1},
                     "traveler": FLYER}, True),
    ("sandbox-air", {"offer": {"venue_id": "UA15", "unit": "economy", "start": "2027-05-25T08:00", "quantity": 1},
                     "traveler": {**FLYER, "nested": {"a": 1}}}, True),
    ("sandbox-tables", {"offer": {"venue_id": "rst_le-bernardin-new-york", "unit": "table", "start": "2027-05-25",
                                  "quantity": 2}, "traveler": TRAVELER}, True),  # a table needs a time
    ("sandbox-tables", {"offer": {"venue_id": "rst_le-bernardin-new-york", "unit": "table",
                                  "start": "2027-05-25T19:00", "quantity": 2}, "traveler": TRAVELER,
                        "ttl_seconds": 0}, True),
    ("sandbox-stays", {"offer": {"venue_id": "htl_the-plaza-new-york", "unit": "STD", "start": "2027-05-25",
                                 "quantity": 2}, "traveler": TRAVELER}, True),  # a stay needs its checkout date
])
async def test_invalid_checkouts_are_a_400(
    sandbox: httpx.AsyncClient, provider_id: str, body: dict[str, Any], headers: bool
) -> None:
    response = await sandbox.post(f"/api/{provider_id}/checkouts", json=body,
                                  headers={"Idempotency-Key": key()} if headers else {})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid"
