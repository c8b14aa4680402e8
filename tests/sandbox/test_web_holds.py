"""Holds placed by the web sites: they expire and free the inventory, and a reference makes a re-run
land on the hold it already placed. Also what the sandbox tells Errand about them.
"""

import asyncio
import json
import uuid

import httpx
import pytest
from sqlalchemy import func, select

from errand.kit.db import Database
from errand.models.sandbox_booking import SandboxBooking, SandboxSlot
from errand.sandbox import service
from errand.sandbox.notify import ProviderEvents, sweep_holds
from tests.sandbox.api_support import credentials
from tests.sandbox.conftest import SETTINGS, Received, events_secret, serving
from tests.sandbox.web_support import (
    wait_for,
    SITES,
    TEST_CARD,
    VENUES,
    Visitor,
    details_fields,
    events_json,
    expected_signature,
    wednesday,
)


async def slot_taken(db: Database, venue_id: str, unit: str) -> int:
    async with db.unit_of_work(read_only=True) as session:
        total = await session.scalar(select(func.coalesce(func.sum(SandboxSlot.taken), 0)).where(
            SandboxSlot.venue_id == venue_id, SandboxSlot.unit == unit,
        ))
    return int(total or 0)


async def holds_with_key(db: Database, site: str, key: str) -> list[SandboxBooking]:
    async with db.unit_of_work(read_only=True) as session:
        stmt = select(SandboxBooking).where(SandboxBooking.provider_id == site, SandboxBooking.idempotency_key == key)
        return list((await session.execute(stmt)).scalars())


@pytest.mark.parametrize("site", SITES)
async def test_the_same_reference_lands_on_the_same_hold(site: str, visitor: Visitor, db: Database) -> None:
    reference = f"job-{uuid.uuid4()}"
    first = await visitor.to_checkout(site, VENUES[site]["normal"], wednesday(20), reference)
    hold_id = first.one(id="hold-summary")["data-hold-id"]
    venue_id, unit = (await holds_with_key(db, site, reference))[0].venue_id, (await holds_with_key(
        db, site, reference))[0].unit
    taken = await slot_taken(db, venue_id, unit)

    # A re-run: a new session, maybe another choice, the same reference.
    details = await visitor.to_details(site, VENUES[site]["normal"], wednesday(20), index=1)
    second = await visitor.details(details, site, details_fields(site, reference))
    assert second.kind == "checkout" and second.url == first.url
    assert second.one(id="hold-summary")["data-hold-id"] == hold_id
    assert len(await holds_with_key(db, site, reference)) == 1
    assert await slot_taken(db, venue_id, unit) == taken

    # Once paid, a re-run lands on the confirmation.
    await visitor.pay(first, TEST_CARD)
    details = await visitor.to_details(site, VENUES[site]["normal"], wednesday(20))
    third = await visitor.details(details, site, details_fields(site, reference))
    assert third.kind == "confirmation" and third.url == first.url


async def test_without_a_reference_a_resubmission_holds_once(visitor: Visitor, db: Database) -> None:
    details = await visitor.to_details("web-tables", "Le Bernardin", wednesday(21))
    checkout = await visitor.details(details, "web-tables", details_fields("web-tables"))
    hold = checkout.one(id="hold-summary")["data-hold-id"]
    taken = await slot_taken(db, "rst_le-bernardin-new-york", "table")
    again = await visitor.details(details, "web-tables", details_fields("web-tables"))
    assert again.kind == "checkout" and again.one(id="hold-summary")["data-hold-id"] != hold
    # The first hold was given back: the session holds one table, not two.
    assert await slot_taken(db, "rst_le-bernardin-new-york", "table") == taken
    assert (await visitor.get(checkout.url)).kind == "checkout-expired"


@pytest.mark.parametrize("site", ["web-tables", "web-air"])
async def test_an_unpaid_hold_expires_and_frees_the_inventory(site: str, db: Database) -> None:
    inbox: list[Received] = []
    settings = SETTINGS.model_copy(update={"sandbox_hold_ttl_seconds": 1})
    async with serving(db, settings=settings, inbox=inbox) as url, httpx.AsyncClient(
        timeout=30, follow_redirects=True
    ) as client:
        visitor = Visitor(client, url)
        reference = f"job-{uuid.uuid4()}"
        checkout = await visitor.to_checkout(site, VENUES[site]["normal"], wednesday(22), reference)
        hold = (await holds_with_key(db, site, reference))[0]
        before = await slot_taken(db, hold.venue_id, hold.unit)
        await asyncio.sleep(1.2)

        expired = await visitor.get(checkout.url)
        assert expired.status == 410 and expired.kind == "checkout-expired"
        assert (await visitor.pay(checkout, TEST_CARD)).kind == "checkout-expired"
        async with db.unit_of_work() as session:
            await service.release_expired_holds(session)
        assert await slot_taken(db, hold.venue_id, hold.unit) == before - sum(hold.slots.values())
        assert (await holds_with_key(db, site, reference))[0].status == "expired"

        event = await wait_for(inbox, lambda e: e["type"] == "hold_expired" and e["reference"] == reference)
        assert json.loads(event.body)["hold_id"] == hold.id
        assert event.headers["webhook-signature"] == expected_signature(events_secret(site), event.headers,
                                                                        event.body)
        assert event.headers["errand-provider-id"] == site
        await visitor.get(checkout.url)
        await asyncio.sleep(0.2)
        assert sum(e["type"] == "hold_expired" and e["hold_id"] == hold.id for e in events_json(inbox)) == 1


async def test_paying_on_the_job_api_checkout_page_is_told_to_errand(
    web_url: str, inbox: list[Received]
) -> None:
    key = f"job-{uuid.uuid4()}"
    async with httpx.AsyncClient(base_url=web_url, timeout=30, auth=credentials(SETTINGS)) as client:
        held = await client.post("/api/sandbox-tickets/checkouts", headers={"Idempotency-Key": key}, json={
            "offer": {"venue_id": "evt_hamilton-new-york", "unit": "ORCH", "start": wednesday(23),
                      "quantity": 2},
            "traveler": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
        })
        assert held.status_code == 201, held.text
        paid = await client.post(held.json()["handoff_url"], data=TEST_CARD)
        assert paid.status_code == 200
    event = await wait_for(inbox, lambda e: e["type"] == "payment_completed" and e["reference"] == key)
    body = json.loads(event.body)
    assert body == {
        "type": "payment_completed", "provider_id": "sandbox-tickets", "hold_id": held.json()["hold_id"],
        "reference": key, "confirmation": body["confirmation"], "occurred_at": body["occurred_at"],
    }
    assert body["confirmation"] in paid.text and body["occurred_at"].endswith("Z")
    assert event.headers["webhook-id"] == f"pev_payment_completed_{body['hold_id']}"
    assert event.headers["content-type"] == "application/json"
    assert event.headers["errand-provider-id"] == "sandbox-tickets"
    assert event.headers["webhook-signature"] == expected_signature(events_secret("sandbox-tickets"), event.headers,
                                                                    event.body)


async def test_delivery_retries_and_never_fails_the_page() -> None:
    answers = iter([500, 502, 204])
    received: list[httpx.Request] = []

    def errand(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(next(answers))

    events = ProviderEvents(events_secret, "http://errand.test/api/v1/provider-events",
                            retry_delays=(0.01, 0.01, 0.01), transport=httpx.MockTransport(errand))
    assert await events.deliver("http://errand.test/api/v1/provider-events", "pev_x",
                                {"type": "x", "provider_id": "web-tables"})
    assert len(received) == 3
    assert len({r.headers["webhook-id"] for r in received}) == 1
    # Nobody listening: every attempt fails, and delivery gives up quietly.
    down = ProviderEvents(events_secret, "http://127.0.0.1:9/none", retry_delays=(0.01,))
    assert not await down.deliver("http://127.0.0.1:9/none", "pev_y", {"type": "y", "provider_id": "web-tables"})


async def test_a_payment_succeeds_while_errand_is_down(db: Database) -> None:
    settings = SETTINGS.model_copy(update={"provider_events_url": "http://127.0.0.1:9/down"})
    async with serving(db, settings=settings) as url, httpx.AsyncClient(timeout=30, follow_redirects=True) as client:
        visitor = Visitor(client, url)
        checkout = await visitor.to_checkout("web-stays", "The Plaza", wednesday(24))
        paid = await visitor.pay(checkout, TEST_CARD)
        assert paid.kind == "confirmation"


async def test_an_offer_taken_by_someone_else_meanwhile_holds_nothing(db: Database, web_url: str) -> None:
    async with httpx.AsyncClient(timeout=30, follow_redirects=True) as a, httpx.AsyncClient(
        timeout=30, follow_redirects=True
    ) as b:
        slow, fast = Visitor(a, web_url), Visitor(b, web_url)
        # Le Bernardin seats 10 covers per slot: parties of 5 and 6 cannot both sit at 17:00.
        details = await slow.to_details("web-tables", "Le Bernardin", wednesday(25), quantity=5)
        slot = details.one("section", id="selection")["data-offer"]
        results = await fast.search("web-tables", "Le Bernardin", wednesday(25), quantity=6)
        assert (await fast.details(await fast.choose(results, slot), "web-tables",
                                   details_fields("web-tables"))).kind == "checkout"
        taken = await slot_taken(db, "rst_le-bernardin-new-york", "table")

        sold_out = await slow.details(details, "web-tables", details_fields("web-tables", "ref-" + uuid.uuid4().hex))
        assert sold_out.status == 409 and sold_out.kind == "sold-out"
        assert await slot_taken(db, "rst_le-bernardin-new-york", "table") == taken
        async with db.unit_of_work(read_only=True) as session:
            held = await session.scalar(select(func.count()).select_from(SandboxBooking).where(
                SandboxBooking.venue_id == "rst_le-bernardin-new-york", SandboxBooking.slot == slot.split("|")[2],
            ))
        assert held == 1
        # The visitor can choose again; the session still works after the refused hold.
        results = await slow.get(sold_out.one("a", id="back-to-results")["href"])
        assert results.kind == "results" and slot not in [o["data-offer"] for o in results.offers("web-tables")]


async def test_lapsed_job_api_holds_are_reported_to_errand_once_without_anyone_opening_the_page(
    web_url: str, inbox: list[Received], db: Database
) -> None:
    """One swept by the periodic sweep, one expired early by a booking at its venue; a paid hold never."""
    keys = [f"job-{uuid.uuid4()}" for _ in range(3)]
    offer = {"venue_id": "evt_hamilton-new-york", "unit": "MEZZ", "start": wednesday(25), "quantity": 1}
    traveler = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}
    async with httpx.AsyncClient(base_url=web_url, timeout=30, auth=credentials(SETTINGS)) as client:
        held = []
        for key, ttl in zip(keys, (1, 1, 900)):
            answer = await client.post("/api/sandbox-tickets/checkouts", headers={"Idempotency-Key": key},
                                       json={"offer": offer, "traveler": traveler, "ttl_seconds": ttl})
            assert answer.status_code == 201, answer.text
            held.append(answer.json())
        assert (await client.post(held[2]["handoff_url"], data=TEST_CARD)).status_code == 200
        await asyncio.sleep(1.2)
        # A booking at the same venue and unit expires the lapsed holds there before the sweep does.
        booked = await client.post("/api/sandbox-tickets/checkouts", headers={"Idempotency-Key": str(uuid.uuid4())},
                                   json={"offer": {**offer, "quantity": 2}, "traveler": traveler})
        assert booked.status_code == 201, booked.text
    assert {h.status for k in keys[:2] for h in await holds_with_key(db, "sandbox-tickets", k)} == {"expired"}

    events = ProviderEvents(events_secret, web_url.removesuffix("/sandbox") + "/api/v1/provider-events")
    await service_sweep(db, events)
    await service_sweep(db, events)  # a second sweep (or another process's) reports nothing again

    ours = {h["hold_id"]: key for h, key in zip(held, keys)}
    reported = [(e, json.loads(e.body)) for e in inbox
                if json.loads(e.body)["hold_id"] in ours and json.loads(e.body)["type"] == "hold_expired"]
    assert sorted(body["hold_id"] for _, body in reported) == sorted([held[0]["hold_id"], held[1]["hold_id"]])
    for received, body in reported:
        assert body["type"] == "hold_expired" and body["provider_id"] == "sandbox-tickets"
        assert body["reference"] == ours[body["hold_id"]] and body["occurred_at"].endswith("Z")
        assert received.headers["webhook-id"] == f"pev_hold_expired_{body['hold_id']}"
        assert received.headers["errand-provider-id"] == "sandbox-tickets"
        assert received.headers["webhook-signature"] == expected_signature(
            events_secret("sandbox-tickets"), received.headers, received.body)


async def service_sweep(db: Database, events: ProviderEvents) -> None:
    """The sandbox's periodic sweep, as the composition root runs it, then the deliveries it started."""
    await sweep_holds(db, events)
    await events.drain()
