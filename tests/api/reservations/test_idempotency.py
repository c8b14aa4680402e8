"""Idempotency-Key on book, cancel and modify: at most once per (organization, endpoint, key).

Capacity is the witness that a booking ran once: Le Bernardin seats 10 covers per slot, so
a party of 6 booked twice under one key leaves room for exactly 4 more.
"""

import asyncio
import json
import secrets
from datetime import date

import httpx

from tests.sandbox.api_support import server_credentials

BOOK = "/api/v1/agent/restaurant/book"
CANCEL = "/api/v1/agent/restaurant/cancel"
MODIFY = "/api/v1/agent/restaurant/modify"
LE_BERNARDIN = "rst_le-bernardin-new-york"


def booking(day: date, time: str, party_size: int, restaurant: str = "Le Bernardin",
            city: str = "New York") -> dict:
    """A booking body; a time without offset is the venue's local time."""
    return {
        "restaurantName": restaurant, "city": city, "partySize": party_size,
        "datetime": f"{day.isoformat()}T{time}:00",
        "customer": {"name": "Jane Doe", "email": "jane@example.com"},
    }


def key() -> str:
    return f"idem-{secrets.token_hex(8)}"


async def remaining(client: httpx.AsyncClient, day: date, time: str, venue_id: str = LE_BERNARDIN) -> int:
    """Covers still free at a slot, as the sandbox provider reports them."""
    response = await client.get(
        f"/sandbox/api/sandbox-tables/restaurants/{venue_id}/availability",
        params={"date": day.isoformat(), "party_size": 1}, auth=server_credentials(),
    )
    assert response.status_code == 200, response.text
    return next((s["remaining"] for s in response.json()["slots"] if s["time"] == time), 0)


async def test_replay_with_same_key_and_body_returns_first_response_and_books_once(org, day):
    k = key()
    first = await org.agent.post(BOOK, json=booking(day, "19:00", 6), headers={"Idempotency-Key": k})
    again = await org.agent.post(BOOK, json=booking(day, "19:00", 6), headers={"Idempotency-Key": k})

    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    assert again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert first.json()["status"] == "confirmed"
    # Only 6 of the 10 covers are taken: 4 more fit, a fifth does not.
    assert await remaining(org.agent, day, "19:00") == 4
    assert (await org.agent.post(BOOK, json=booking(day, "19:00", 4))).status_code == 201
    full = await org.agent.post(BOOK, json=booking(day, "19:00", 1))
    assert full.status_code == 409
    assert full.json()["error"]["code"] == "CAPACITY_EXCEEDED"


async def test_replay_with_other_body_is_conflict_and_books_nothing(org, day):
    k = key()
    first = await org.agent.post(BOOK, json=booking(day, "19:00", 2), headers={"Idempotency-Key": k})
    assert first.status_code == 201, first.text

    other = await org.agent.post(BOOK, json=booking(day, "19:30", 2), headers={"Idempotency-Key": k})

    assert other.status_code == 409
    assert other.json()["error"]["code"] == "IDEMPOTENCY_CONFLICT"
    assert await remaining(org.agent, day, "19:30") == 10
    assert await remaining(org.agent, day, "19:00") == 8


async def test_same_key_in_two_organizations_books_twice(org, other_org, day):
    k = key()
    mine = await org.agent.post(BOOK, json=booking(day, "19:00", 3), headers={"Idempotency-Key": k})
    theirs = await other_org.post(BOOK, json=booking(day, "19:00", 3), headers={"Idempotency-Key": k})

    assert mine.status_code == 201, mine.text
    assert theirs.status_code == 201, theirs.text
    assert "Idempotent-Replayed" not in theirs.headers
    assert theirs.json()["transactionId"] != mine.json()["transactionId"]
    assert await remaining(org.agent, day, "19:00") == 4


async def test_key_order_and_whitespace_of_the_body_do_not_matter(org, day):
    k = key()
    body = booking(day, "19:00", 2)
    compact = json.dumps(body, separators=(",", ":"))
    reordered = json.dumps({
        "customer": {"email": "jane@example.com", "name": "Jane Doe"},
        "datetime": body["datetime"], "partySize": 2, "city": "New York", "restaurantName": "Le Bernardin",
    }, indent=4)
    assert json.loads(reordered) == body
    headers = {"Idempotency-Key": k, "Content-Type": "application/json"}

    first = await org.agent.post(BOOK, content=compact, headers=headers)
    again = await org.agent.post(BOOK, content=reordered, headers=headers)

    assert first.status_code == 201, first.text
    assert again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert await remaining(org.agent, day, "19:00") == 8


async def test_cached_not_found_replays_as_the_same_not_found(org, day):
    k = key()
    body = booking(day, "19:00", 2, restaurant="Nowhere Bistro")
    first = await org.agent.post(BOOK, json=body, headers={"Idempotency-Key": k})
    again = await org.agent.post(BOOK, json=body, headers={"Idempotency-Key": k})

    assert first.status_code == 404
    assert first.json()["error"]["code"] == "NOT_FOUND"
    assert again.status_code == 404
    assert again.json() == first.json()
    # The 404 is stored under the key: another body with it is a conflict, not a booking.
    reused = await org.agent.post(BOOK, json=booking(day, "19:00", 2), headers={"Idempotency-Key": k})
    assert reused.status_code == 409
    assert reused.json()["error"]["code"] == "IDEMPOTENCY_CONFLICT"
    assert await remaining(org.agent, day, "19:00") == 10


async def test_concurrent_duplicates_book_once_and_answer_the_same_or_conflict(org, day):
    k = key()
    body = booking(day, "19:00", 6)

    responses = await asyncio.gather(*[
        org.agent.post(BOOK, json=body, headers={"Idempotency-Key": k}) for _ in range(10)
    ])

    created = [r for r in responses if r.status_code == 201]
    others = [r for r in responses if r.status_code != 201]
    assert created, [r.text for r in responses]
    assert all(r.status_code == 409 and r.json()["error"]["code"] == "IDEMPOTENCY_CONFLICT" for r in others), \
        [r.text for r in others]
    assert len({json.dumps(r.json(), sort_keys=True) for r in created}) == 1
    assert sum("Idempotent-Replayed" not in r.headers for r in created) == 1
    assert await remaining(org.agent, day, "19:00") == 4


async def test_rate_limited_answer_is_not_cached(org, day):
    policy = await org.admin.post("/api/v1/policies", json={
        "name": "One per hour", "type": "RATE_LIMIT", "config": {"maxRequestsPerHour": 1},
    })
    assert policy.status_code == 201, policy.text
    assert (await org.agent.post(BOOK, json=booking(day, "18:00", 1))).status_code == 201
    k = key()
    body = booking(day, "19:00", 2)

    limited = await org.agent.post(BOOK, json=body, headers={"Idempotency-Key": k})
    assert limited.status_code == 429, limited.text
    assert limited.json()["error"]["code"] == "RATE_LIMITED"
    disabled = await org.admin.patch(f"/api/v1/policies/{policy.json()['id']}", json={"enabled": False})
    assert disabled.status_code == 200, disabled.text
    retried = await org.agent.post(BOOK, json=body, headers={"Idempotency-Key": k})

    assert retried.status_code == 201, retried.text
    assert "Idempotent-Replayed" not in retried.headers
    assert await remaining(org.agent, day, "19:00") == 8


async def test_replayed_cancel_returns_the_cancellation_not_invalid_state(org, day):
    booked = await org.agent.post(BOOK, json=booking(day, "19:00", 2))
    assert booked.status_code == 201, booked.text
    k = key()
    body = {"transaction_id": booked.json()["transactionId"], "reason": "plans changed"}

    first = await org.agent.post(CANCEL, json=body, headers={"Idempotency-Key": k})
    again = await org.agent.post(CANCEL, json=body, headers={"Idempotency-Key": k})

    assert first.status_code == 200, first.text
    assert first.json()["status"] == "cancelled"
    assert again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert await remaining(org.agent, day, "19:00") == 10


async def test_replayed_modify_returns_the_first_answer_and_modifies_once(org, day):
    booked = await org.agent.post(BOOK, json=booking(day, "19:00", 2))
    assert booked.status_code == 201, booked.text
    txn_id = booked.json()["transactionId"]
    k = key()
    body = {"transactionId": txn_id, "updates": {"partySize": 5, "datetime": f"{day.isoformat()}T20:00:00"}}

    first = await org.agent.post(MODIFY, json=body, headers={"Idempotency-Key": k})
    again = await org.agent.post(MODIFY, json=body, headers={"Idempotency-Key": k})

    assert first.status_code == 200, first.text
    assert first.json()["status"] == "modified"
    assert first.json()["reservation"]["partySize"] == 5
    assert again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    detail = (await org.agent.get(f"/api/v1/transactions/{txn_id}")).json()
    assert [e["type"] for e in detail["events"]].count("transaction.modified") == 1
    assert await remaining(org.agent, day, "19:00") == 10
    assert await remaining(org.agent, day, "20:00") == 5


async def test_key_is_scoped_per_endpoint(org, day):
    k = key()
    booked = await org.agent.post(BOOK, json=booking(day, "19:00", 2), headers={"Idempotency-Key": k})
    assert booked.status_code == 201, booked.text

    cancelled = await org.agent.post(CANCEL, json={"transactionId": booked.json()["transactionId"]},
                                     headers={"Idempotency-Key": k})

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert "Idempotent-Replayed" not in cancelled.headers


async def test_key_longer_than_255_characters_is_invalid_and_books_nothing(org, day):
    too_long = await org.agent.post(BOOK, json=booking(day, "19:00", 2), headers={"Idempotency-Key": "k" * 256})
    longest = await org.agent.post(BOOK, json=booking(day, "19:30", 2), headers={"Idempotency-Key": "k" * 255})

    assert too_long.status_code == 400
    assert too_long.json()["error"]["code"] == "INVALID_REQUEST"
    assert "Idempotency-Key" in too_long.json()["error"]["message"]
    assert await remaining(org.agent, day, "19:00") == 10
    assert longest.status_code == 201, longest.text


async def test_a_replayed_error_says_it_is_replayed(org, day):
    k = key()
    body = {"transaction_id": "txn_does_not_exist"}
    first = await org.agent.post(CANCEL, json=body, headers={"Idempotency-Key": k})
    again = await org.agent.post(CANCEL, json=body, headers={"Idempotency-Key": k})
    assert first.status_code == again.status_code == 404
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    # An error of the booking itself, cached under its key: the party is larger than the slot.
    k = key()
    first = await org.agent.post(BOOK, json=booking(day, "19:00", 11), headers={"Idempotency-Key": k})
    again = await org.agent.post(BOOK, json=booking(day, "19:00", 11), headers={"Idempotency-Key": k})
    assert 400 <= first.status_code < 500 and again.status_code == first.status_code, first.text
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"


async def test_a_replayed_job_cancel_error_says_it_is_replayed(org):
    k = key()
    first = await org.agent.post("/api/v1/execution-jobs/job_does_not_exist/cancel", headers={"Idempotency-Key": k})
    again = await org.agent.post("/api/v1/execution-jobs/job_does_not_exist/cancel", headers={"Idempotency-Key": k})
    assert first.status_code == again.status_code == 404, first.text
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
