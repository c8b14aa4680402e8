"""The ledger: a provider's own count of the holds and bookings it created, by status, read-only.

Each test counts from the moment it starts (``since``), so the other tests of this module
sharing its database do not show up. Dates here are of this module only (2027-06).
"""

import asyncio
import uuid
from datetime import UTC, datetime

import httpx

from errand.providers.base import SearchQuery
from errand.providers.sandbox import SandboxApiProvider

Adapters = dict[str, SandboxApiProvider]
TRAVELER = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "phone": "+1 212 555 0100"}
ZERO = {"held": 0, "booked": 0, "expired": 0, "released": 0, "cancelled": 0}


def dinner(day: str, venue: str = "Le Bernardin") -> SearchQuery:
    return SearchQuery(scenario="restaurant", venue=venue, city="New York", date=day, time="19:00", quantity=2)


async def ledger(sandbox: httpx.AsyncClient, provider_id: str, since: str) -> dict:
    response = await sandbox.get(f"/api/{provider_id}/ledger", params={"since": since})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["provider_id"] == provider_id and body["total"] == sum(body["counts"].values())
    return body


async def test_ledger_counts_what_each_provider_created_since_a_moment(
    providers: Adapters, sandbox: httpx.AsyncClient
) -> None:
    since = datetime.now(UTC).isoformat()
    assert (await ledger(sandbox, "sandbox-tables", since))["counts"] == ZERO
    tables, dine = providers["sandbox-tables"], providers["sandbox-dine"]
    offer = (await tables.search(dinner("2027-06-01")))[0]
    key = str(uuid.uuid4())
    replays = await asyncio.gather(*(tables.checkout(offer, TRAVELER, idempotency_key=key) for _ in range(3)))
    assert len({r.hold_id for r in replays}) == 1  # one hold, however often the key is replayed
    await dine.checkout((await dine.search(dinner("2027-06-01", "Carbone")))[0], TRAVELER,
                        idempotency_key=str(uuid.uuid4()))
    counted = await ledger(sandbox, "sandbox-tables", since)
    assert counted["counts"] == {**ZERO, "held": 1} and counted["since"].endswith("Z")
    assert (await ledger(sandbox, "sandbox-dine", since))["counts"] == {**ZERO, "booked": 1}
    later = datetime.now(UTC).isoformat()
    assert (await ledger(sandbox, "sandbox-tables", later))["total"] == 0


async def test_a_lapsed_hold_counts_as_expired(providers: Adapters, sandbox: httpx.AsyncClient) -> None:
    since = datetime.now(UTC).isoformat()
    offer = (await providers["sandbox-tickets"].search(SearchQuery(
        scenario="activity", venue="Hamilton", city="New York", date="2027-06-02", quantity=1)))[0]
    picked = {"venue_id": offer.venue_id, "unit": offer.unit, "start": offer.start, "quantity": 1}
    created = await sandbox.post("/api/sandbox-tickets/checkouts", headers={"Idempotency-Key": str(uuid.uuid4())},
                                 json={"offer": picked, "traveler": TRAVELER, "ttl_seconds": 1})
    assert created.status_code == 201, created.text
    assert (await ledger(sandbox, "sandbox-tickets", since))["counts"]["held"] == 1
    await asyncio.sleep(1.2)
    assert (await ledger(sandbox, "sandbox-tickets", since))["counts"] == {**ZERO, "expired": 1}


async def test_ledger_refuses_a_bad_moment_and_an_unknown_provider(sandbox: httpx.AsyncClient) -> None:
    bad = await sandbox.get("/api/sandbox-tables/ledger", params={"since": "yesterday"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid"
    unknown = await sandbox.get("/api/nobody/ledger")
    assert unknown.status_code == 404
    everything = await sandbox.get("/api/sandbox-air/ledger")
    assert everything.status_code == 200 and everything.json()["since"] is None
