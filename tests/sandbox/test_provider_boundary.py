"""The sandbox is a provider, not a back door: only Errand calls its APIs, no page may be framed,
and nothing it answers or sends follows the request's ``Host``.

Dates here are of this module only (2027-08).
"""

import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from errand.providers.base import Guest, SearchQuery
from errand.providers.sandbox import SandboxApiProvider, SandboxTables
from tests.sandbox.api_support import credentials
from tests.sandbox.conftest import SETTINGS, Received
from tests.sandbox.web_support import TEST_CARD, Visitor, details_fields, search_fields, wait_for, wednesday

Adapters = dict[str, SandboxApiProvider]
TRAVELER = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}
EVIL = "evil.example"
ANTI_FRAMING = {
    "x-frame-options": "DENY", "content-security-policy": "frame-ancestors 'none'",
    "referrer-policy": "no-referrer", "x-content-type-options": "nosniff",
}


def bearer(provider_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {SETTINGS.sandbox_api_token(provider_id)}"}


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json() == {"error": "unauthorized", "message": response.json()["message"], "nearest": []}
    assert response.headers["www-authenticate"].startswith("Bearer")


async def held_table(providers: Adapters, day: str) -> Any:
    tables = providers["sandbox-tables"]
    offer = (await tables.search(SearchQuery(scenario="restaurant", venue="Le Bernardin", city="New York",
                                             date=day, quantity=2)))[0]
    return await tables.checkout(offer, TRAVELER, idempotency_key=str(uuid.uuid4()))


async def test_the_apis_refuse_callers_without_the_providers_credential(sandbox_url: str) -> None:
    calls = [
        ("GET", "/api/sandbox-tables/restaurants", None),
        ("GET", "/api/sandbox-tables/restaurants/rst_le-bernardin-new-york/availability?date=2027-08-02&party_size=2",
         None),
        ("POST", "/api/sandbox-air/search", {"scenario": "flight", "origin": "JFK", "dest": "SFO",
                                             "date": "2027-08-02", "quantity": 1}),
        ("GET", "/api/sandbox-tables/ledger", None),
        ("GET", "/api/sandbox-stays/holds/sbk_anything", None),
        ("POST", "/api/sandbox-tables/reservations/sbk_anything/cancel", None),
    ]
    wrong = [{}, {"Authorization": "Bearer"}, {"Authorization": "Bearer sbx_guess"},
             {"Authorization": f"Basic {SETTINGS.sandbox_api_token('sandbox-tables')}"}]
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=30) as anyone:
        for method, path, body in calls:
            for headers in wrong:
                assert_unauthorized(await anyone.request(method, path, json=body, headers=headers))
        # Another provider's token opens only that provider's API.
        assert_unauthorized(await anyone.get("/api/sandbox-tables/ledger", headers=bearer("sandbox-air")))
        assert (await anyone.get("/api/sandbox-tables/ledger", headers=bearer("sandbox-tables"))).status_code == 200


async def test_nobody_but_errand_can_cancel_a_booking(tables: SandboxTables, sandbox_url: str) -> None:
    booked = await tables.book("rst_le-bernardin-new-york", datetime(2027, 8, 3, 19),
                               2, Guest(name="Ada Lovelace"), idempotency_key=str(uuid.uuid4()))
    path = f"/api/sandbox-tables/reservations/{booked.reservation_id}"
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=30) as anyone:
        assert_unauthorized(await anyone.post(f"{path}/cancel"))
        assert_unauthorized(await anyone.post(f"{path}/cancel", headers=bearer("sandbox-dine")))
        assert_unauthorized(await anyone.get(path))
        still = await anyone.get(path, headers=bearer("sandbox-tables"))
    assert still.status_code == 200 and still.json()["status"] == "booked"


async def test_a_providers_credential_reads_only_its_own_holds(providers: Adapters, sandbox_url: str) -> None:
    held = await held_table(providers, "2027-08-04")
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=30) as errand:
        own = await errand.get(f"/api/sandbox-tables/holds/{held.hold_id}", headers=bearer("sandbox-tables"))
        other = await errand.get(f"/api/sandbox-tickets/holds/{held.hold_id}", headers=bearer("sandbox-tickets"))
    assert own.status_code == 200 and own.json()["status"] == "held"
    assert other.status_code == 404


async def test_what_the_apis_store_from_their_callers_is_bounded(sandbox_url: str) -> None:
    offer = {"venue_id": "evt_hamilton-new-york", "unit": "ORCH", "start": wednesday(32), "quantity": 1}
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=30, auth=credentials(SETTINGS)) as errand:
        long_key = await errand.post("/api/sandbox-tickets/checkouts", headers={"Idempotency-Key": "k" * 129},
                                     json={"offer": offer, "traveler": TRAVELER})
        long_name = await errand.post("/api/sandbox-tickets/checkouts", headers={"Idempotency-Key": "k"},
                                      json={"offer": offer, "traveler": {**TRAVELER, "first_name": "A" * 501}})
        long_guest = await errand.post(
            "/api/sandbox-tables/restaurants/rst_le-bernardin-new-york/reservations",
            headers={"Idempotency-Key": str(uuid.uuid4())},
            json={"start": f"{wednesday(32)}T19:00", "party_size": 2, "guest": {"name": "A" * 201}})
    for refused in (long_key, long_name, long_guest):
        assert refused.status_code == 400 and refused.json()["error"] == "invalid", refused.text


async def test_every_answer_refuses_to_be_framed(providers: Adapters, sandbox_url: str) -> None:
    held = await held_table(providers, "2027-08-05")
    async with httpx.AsyncClient(timeout=30, auth=credentials(SETTINGS)) as client:
        answers = [
            await client.get(held.handoff_url),
            await client.post(held.handoff_url, data={"card_number": "1"}),
            await client.get(f"{sandbox_url}/checkout/not-a-token"),
            await client.get(f"{sandbox_url}/web/web-tables/"),
            await client.get(f"{sandbox_url}/web/web-tables/checkout/not-a-token"),
            await client.get(f"{sandbox_url}/api/sandbox-tables/holds/{held.hold_id}"),
            await client.get(f"{sandbox_url}/nowhere"),
        ]
    for answer in answers:
        for name, value in ANTI_FRAMING.items():
            assert answer.headers.get(name) == value, (str(answer.url), name)


@pytest.fixture
async def forged(web_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, list[httpx.Response]]]:
    """A client whose every request names ``evil.example`` as its Host; yields it and every answer it got."""
    seen: list[httpx.Response] = []

    async def keep(response: httpx.Response) -> None:
        await response.aread()
        seen.append(response)

    async with httpx.AsyncClient(timeout=30, headers={"Host": EVIL}, follow_redirects=True,
                                 event_hooks={"response": [keep]}) as client:
        yield client, seen


def assert_never_echoed(seen: list[httpx.Response]) -> None:
    assert seen
    for response in seen:
        assert EVIL not in response.text and EVIL not in str(response.headers).lower(), str(response.url)


async def test_a_forged_host_neither_diverts_the_payment_event_nor_appears_in_any_answer(
    web_url: str, inbox: list[Received], forged: tuple[httpx.AsyncClient, list[httpx.Response]]
) -> None:
    client, seen = forged
    key = f"job-{uuid.uuid4()}"
    held = await client.post(f"{web_url}/api/sandbox-tickets/checkouts", auth=credentials(SETTINGS),
                             headers={"Idempotency-Key": key}, json={
        "offer": {"venue_id": "evt_hamilton-new-york", "unit": "ORCH", "start": wednesday(33), "quantity": 2},
        "traveler": TRAVELER,
    })
    assert held.status_code == 201, held.text
    handoff = held.json()["handoff_url"]
    assert handoff.startswith(f"{web_url}/checkout/")
    assert (await client.get(handoff)).status_code == 200
    paid = await client.post(handoff, data=TEST_CARD)
    assert paid.status_code == 200, paid.text

    # The event went to the configured receiver (this server's own), not to the forged host.
    event = await wait_for(inbox, lambda e: e["type"] == "payment_completed" and e["reference"] == key)
    assert json.loads(event.body)["hold_id"] == held.json()["hold_id"]
    assert event.headers["host"] == web_url.split("//", 1)[1].split("/", 1)[0]
    assert_never_echoed(seen)


async def test_a_forged_host_never_reaches_the_web_sites_links_or_redirects(
    web_url: str, inbox: list[Received], forged: tuple[httpx.AsyncClient, list[httpx.Response]]
) -> None:
    client, seen = forged
    visitor = Visitor(client, web_url)
    reference = f"job-{uuid.uuid4()}"
    # Every redirect by hand: each Location must be the configured URL, never the Host's.
    results = await client.post(f"{web_url}/web/web-tables/search", follow_redirects=False,
                                data=search_fields("web-tables", "Carbone", wednesday(34)))
    assert results.status_code == 303 and results.headers["location"].startswith(f"{web_url}/web/web-tables/s/")
    page = await visitor.get(results.headers["location"])
    chosen = await visitor.choose(page, page.offers("web-tables")[0]["data-offer"])
    assert chosen.kind == "details"
    done = await client.post(chosen.one("form", id="guest-details")["action"], follow_redirects=False,
                             data=details_fields("web-tables", reference))
    assert done.status_code == 303 and done.headers["location"].startswith(f"{web_url}/web/web-tables/checkout/")
    checkout = await visitor.get(done.headers["location"])
    assert checkout.kind == "checkout"
    paid = await client.post(checkout.one("form", id="payment-form")["action"], data=TEST_CARD,
                             follow_redirects=False)
    assert paid.status_code == 303 and paid.headers["location"] == done.headers["location"]
    await wait_for(inbox, lambda e: e["type"] == "payment_completed" and e["reference"] == reference)

    # Trailing-slash redirects, which Starlette builds from Host, are not made.
    bare = await client.get(f"{web_url}/web/web-tables", follow_redirects=False)
    assert bare.status_code == 303 and bare.headers["location"] == f"{web_url}/web/web-tables/"
    slashed = await client.post(f"{web_url}/api/sandbox-tables/search/", auth=credentials(SETTINGS), json={})
    assert slashed.status_code == 404
    assert_never_echoed(seen)
