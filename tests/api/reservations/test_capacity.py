"""A slot can never be oversold, however many requests race for its last covers.

Golden Gate Grill seats 30 covers per 15-minute slot; each test first takes 20 of them, so
50 concurrent requests compete for the last 10. The ``server`` fixture runs every test on
SQLite and on PostgreSQL.
"""

import asyncio
import re
from datetime import date

import httpx

from tests.sandbox.api_support import server_credentials

BOOK = "/api/v1/agent/restaurant/book"
MODIFY = "/api/v1/agent/restaurant/modify"
GOLDEN_GATE = "rst_golden-gate-grill-san-francisco"


def booking(day: date, time: str, party_size: int, guest: str = "Jane Doe") -> dict:
    """A Golden Gate Grill booking at a venue-local time."""
    return {
        "restaurantName": "Golden Gate Grill", "city": "San Francisco", "partySize": party_size,
        "datetime": f"{day.isoformat()}T{time}:00", "customer": {"name": guest},
    }


async def remaining(client: httpx.AsyncClient, day: date, time: str) -> int:
    """Covers still free at a slot, as the sandbox provider reports them."""
    response = await client.get(
        f"/sandbox/api/sandbox-tables/restaurants/{GOLDEN_GATE}/availability",
        params={"date": day.isoformat(), "party_size": 1}, auth=server_credentials(),
    )
    assert response.status_code == 200, response.text
    return next((s["remaining"] for s in response.json()["slots"] if s["time"] == time), 0)


async def fill(client: httpx.AsyncClient, day: date, time: str, covers: int) -> None:
    """Take ``covers`` covers of a slot in parties of up to 10."""
    while covers > 0:
        party = min(10, covers)
        response = await client.post(BOOK, json=booking(day, time, party, guest="Early Bird"))
        assert response.status_code == 201, response.text
        covers -= party


def assert_capacity_exceeded(response: httpx.Response, full_slot: str) -> None:
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "CAPACITY_EXCEEDED"
    nearest = error["details"]["nearestAvailableTimes"]
    assert nearest, error
    assert all(re.fullmatch(r"\d{2}:\d{2}", t) for t in nearest), nearest
    assert full_slot not in nearest


async def test_fifty_concurrent_bookings_for_the_last_ten_covers_confirm_exactly_ten(org, day):
    await fill(org.agent, day, "19:00", 20)

    responses = await asyncio.gather(*[
        org.agent.post(BOOK, json=booking(day, "19:00", 1, guest=f"Guest {i}")) for i in range(50)
    ])

    confirmed = [r for r in responses if r.status_code == 201]
    refused = [r for r in responses if r.status_code != 201]
    assert len(confirmed) == 10, [r.text for r in refused if r.status_code != 409]
    assert all(r.json()["status"] == "confirmed" for r in confirmed)
    assert len({r.json()["reservation"]["reservationId"] for r in confirmed}) == 10
    assert len(refused) == 40
    for response in refused:
        assert_capacity_exceeded(response, "19:00")
    assert await remaining(org.agent, day, "19:00") == 0


async def test_fifty_concurrent_modifies_into_a_nearly_full_slot_move_exactly_ten(org, day):
    # Fifty parties of one, spread over two slots that have room for them all.
    made = await asyncio.gather(*[
        org.agent.post(BOOK, json=booking(day, "12:00" if i % 2 else "12:15", 1, guest=f"Guest {i}"))
        for i in range(50)
    ])
    assert all(r.status_code == 201 for r in made), [r.text for r in made if r.status_code != 201]
    await fill(org.agent, day, "19:00", 20)

    responses = await asyncio.gather(*[
        org.agent.post(MODIFY, json={"transactionId": r.json()["transactionId"],
                                     "updates": {"datetime": f"{day.isoformat()}T19:00:00"}})
        for r in made
    ])

    moved = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert len(moved) == 10, [r.text for r in refused if r.status_code != 409]
    assert all(r.json()["status"] == "modified" for r in moved)
    assert all(r.json()["reservation"]["localDatetime"] == f"{day.isoformat()}T19:00" for r in moved)
    assert len(refused) == 40
    for response in refused:
        assert_capacity_exceeded(response, "19:00")
    assert await remaining(org.agent, day, "19:00") == 0
    # The moved parties gave their old covers back; the others kept their tables.
    assert await remaining(org.agent, day, "12:00") + await remaining(org.agent, day, "12:15") == 60 - 40
    kept = (await asyncio.gather(*[
        org.agent.get(f"/api/v1/transactions/{r.json()['transactionId']}") for r in made
    ]))
    statuses = sorted(t.json()["status"] for t in kept)
    assert statuses == ["confirmed"] * 40 + ["modified"] * 10
    assert all(t.json()["reservation"]["localDatetime"] != f"{day.isoformat()}T19:00"
               for t in kept if t.json()["status"] == "confirmed")
