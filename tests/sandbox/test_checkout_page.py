"""The payment page behind a handoff URL, driven with plain form posts as a browser would send them.

Every test holds its own table at Le Bernardin on a date of its own (June 2027).
"""

import asyncio
import uuid

import httpx
from sqlalchemy import text

from errand.kit.db import Database
from errand.providers.base import Checkout, SearchQuery
from errand.providers.sandbox import SandboxApiProvider

Adapters = dict[str, SandboxApiProvider]
TRAVELER = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}
TEST_CARD = {"card_number": "4242 4242 4242 4242", "expiry": "12/35", "cvc": "123"}


async def held_table(providers: Adapters, day: str) -> Checkout:
    tables = providers["sandbox-tables"]
    query = SearchQuery(scenario="restaurant", venue="Le Bernardin", city="New York", date=day, quantity=2)
    offer = (await tables.search(query))[0]
    checkout = await tables.checkout(offer, TRAVELER, idempotency_key=str(uuid.uuid4()))
    assert checkout.status == "paused_payment" and checkout.handoff_url
    return checkout


async def status_of(sandbox: httpx.AsyncClient, checkout: Checkout) -> dict[str, str]:
    return (await sandbox.get(f"/api/sandbox-tables/holds/{checkout.hold_id}")).json()


async def test_the_page_summarises_the_hold_and_asks_for_a_card(
    providers: Adapters, sandbox: httpx.AsyncClient
) -> None:
    checkout = await held_table(providers, "2027-06-01")
    page = await sandbox.get(checkout.handoff_url)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for shown in ("Le Bernardin", "2027-06-01T17:00", "$450", 'name="card_number"', 'name="expiry"', 'name="cvc"'):
        assert shown in page.text


async def test_the_test_card_books_the_hold(providers: Adapters, sandbox: httpx.AsyncClient) -> None:
    checkout = await held_table(providers, "2027-06-02")
    paid = await sandbox.post(checkout.handoff_url, data=TEST_CARD)
    assert paid.status_code == 200, paid.text
    hold = await status_of(sandbox, checkout)
    assert hold["status"] == "booked" and hold["confirmation"].startswith("SBX-")
    assert hold["confirmation"] in paid.text and "<form" not in paid.text
    again = await sandbox.post(checkout.handoff_url, data=TEST_CARD)
    assert again.status_code == 200 and hold["confirmation"] in again.text
    assert (await status_of(sandbox, checkout))["confirmation"] == hold["confirmation"]


async def test_another_card_is_declined_and_the_hold_stays(providers: Adapters, sandbox: httpx.AsyncClient) -> None:
    checkout = await held_table(providers, "2027-06-03")
    declined = await sandbox.post(checkout.handoff_url, data={**TEST_CARD, "card_number": "4000 0000 0000 0002"})
    assert declined.status_code == 402
    assert "declined" in declined.text and "<form" in declined.text
    assert (await status_of(sandbox, checkout))["status"] == "held"
    assert (await sandbox.post(checkout.handoff_url, data=TEST_CARD)).status_code == 200


async def test_malformed_card_fields_are_explained(providers: Adapters, sandbox: httpx.AsyncClient) -> None:
    checkout = await held_table(providers, "2027-06-04")
    bad = await sandbox.post(checkout.handoff_url, data={"card_number": "4242", "expiry": "13/30", "cvc": "12"})
    assert bad.status_code == 400
    for problem in ("card number", "MM/YY", "security code"):
        assert problem in bad.text
    lapsed = await sandbox.post(checkout.handoff_url, data={**TEST_CARD, "expiry": "01/20"})
    assert lapsed.status_code == 400 and "expired" in lapsed.text
    assert (await sandbox.post(checkout.handoff_url, content=b"\xff\xfe")).status_code == 400
    assert (await status_of(sandbox, checkout))["status"] == "held"


async def test_an_expired_hold_cannot_be_paid(sandbox: httpx.AsyncClient) -> None:
    body = {"offer": {"venue_id": "rst_le-bernardin-new-york", "unit": "table", "start": "2027-06-05T19:00",
                      "quantity": 2}, "traveler": TRAVELER, "ttl_seconds": 1}
    response = await sandbox.post("/api/sandbox-tables/checkouts", json=body,
                                  headers={"Idempotency-Key": str(uuid.uuid4())})
    handoff_url = response.json()["handoff_url"]
    await asyncio.sleep(1.2)
    for page in (await sandbox.get(handoff_url), await sandbox.post(handoff_url, data=TEST_CARD)):
        assert page.status_code == 410
        assert "expired" in page.text and "<form" not in page.text


async def test_an_unknown_checkout_is_not_found(sandbox: httpx.AsyncClient) -> None:
    assert (await sandbox.get("/checkout/no-such-token")).status_code == 404
    assert (await sandbox.post("/checkout/no-such-token", data=TEST_CARD)).status_code == 404


async def test_card_data_is_never_stored(providers: Adapters, sandbox: httpx.AsyncClient, db: Database) -> None:
    checkout = await held_table(providers, "2027-06-06")
    await sandbox.post(checkout.handoff_url, data={**TEST_CARD, "card_number": "5555 5555 5555 4444"})
    await sandbox.post(checkout.handoff_url, data=TEST_CARD)
    async with db.unit_of_work() as session:
        rows = (await session.execute(text("SELECT * FROM sandbox_bookings"))).all()
    dump = repr(rows).replace(" ", "")
    assert "4242424242424242" not in dump and "5555555555554444" not in dump and "12/35" not in dump
